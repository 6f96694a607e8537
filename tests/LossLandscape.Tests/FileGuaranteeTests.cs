using System.Text.RegularExpressions;
using LossLandscape.Engine;

namespace LossLandscape.Tests;

/// <summary>
/// The file guarantees of the README's "Guarantees": no output overwrites an input or another output (after symbolic
/// and hard links), and every file is written atomically by <see cref="AtomicFile"/>, which leaves the old file intact
/// when the writing fails.
/// </summary>
public sealed class FileGuaranteeTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("landscape-files-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private const string Iris = "builtin:iris";

    /// <summary>
    /// One row per (command, output option): the arguments, with {m} a model of iris, {s} a CSV file, {b} a second
    /// model named .svg (a plot's extension), {d} a directory and {t} a fresh model path; then the two options the
    /// refusal must name (the output first) and the placeholder of the file that must stay unchanged.
    /// </summary>
    public static TheoryData<string, string, string, string> SameFile() => new()
    {
        { "init --data {s} --out {s}", "--out", "--data", "{s}" },
        { "construct --data {s} --out {s}", "--out", "--data", "{s}" },
        { "construct --data {s} --out {t} --json {t}", "--json", "--out", "{s}" },
        { "train --data {s} --steps 1 --out {t} --json {t}", "--json", "--out", "{s}" },
        { "train --data builtin:iris --one-hot species --init {m} --out {m}", "--out", "--init", "{m}" },
        { "train --data {s} --steps 1 --out {s}", "--out", "--data", "{s}" },
        { "info --model {m} --json {m}", "--json", "--model", "{m}" },
        { "evaluate --model {m} --data builtin:iris --one-hot species --json {m}", "--json", "--model", "{m}" },
        { "certify --model {m} --data builtin:iris --one-hot species --json {m}", "--json", "--model", "{m}" },
        { "spectrum --model {m} --data builtin:iris --one-hot species --json {m}", "--json", "--model", "{m}" },
        { "trace --model {m} --data builtin:iris --one-hot species --json {m}", "--json", "--model", "{m}" },
        { "approx --model {m} --data builtin:iris --one-hot species --json {m}", "--json", "--model", "{m}" },
        { "walk --model {m} --data builtin:iris --one-hot species --out {m}", "--out", "--model", "{m}" },
        { "walk --model {m} --data builtin:iris --one-hot species --json {m}", "--json", "--model", "{m}" },
        { "permute --model {m} --out {m}", "--out", "--model", "{m}" },
        { "permute --model {m} --out {t} --json {m}", "--json", "--model", "{m}" },
        { "export --model {m} --out {m}", "--out", "--model", "{m}" },
        { "export --model {m} --out {t} --json {t}", "--json", "--out", "{m}" },
        { "slice --model {b} --data builtin:iris --one-hot species --out {b}", "--out", "--model", "{b}" },
        { "slice --model {m} --data builtin:iris --one-hot species --out {b} --json {m}", "--json", "--model", "{m}" },
        { "connect --model {m} --to {b} --data builtin:iris --one-hot species --plot {b}", "--plot", "--to", "{b}" },
        { "connect --model {m} --to {b} --data builtin:iris --one-hot species --out {m}", "--out", "--model", "{m}" },
        { "connect --model {m} --to {b} --data builtin:iris --one-hot species --json {b}", "--json", "--to", "{b}" },
        { "report --model {m} --data builtin:iris --one-hot species --history {d}/index.html --out {d}", "--out", "--history", "{d}/index.html" },
        { "report --model {m} --data builtin:iris --one-hot species --path {d}/index.html --out {d}", "--out", "--path", "{d}/index.html" },
        { "verify --report {d} --json {d}/index.html", "--json", "--report", "{d}/index.html" },
    };

    /// <summary>Output options of a command that has no input and a single output: nothing to collide with.</summary>
    private static readonly HashSet<string> AloneOutputs = ["experiment trained-spectra --json", "cluster init --out"];

    /// <summary>The placeholders of a row, made real: the files exist (the model of iris, a CSV, a directory with an index.html).</summary>
    private string[] Arguments(string row)
    {
        string model = Path.Combine(_dir, "m.json");
        string svgModel = Path.Combine(_dir, "b.svg");
        string csv = Path.Combine(_dir, "s.csv");
        string dir = Path.Combine(_dir, "report");
        if (!File.Exists(model))
        {
            var (code, output, err) = CliTests.Run("init", "--data", Iris, "--one-hot", "species", "--hidden", "3", "--out", model);
            Assert.True(code == 0, output + err);
            File.Copy(model, svgModel);
            File.WriteAllText(csv, "a,b,y\n1,2,3\n4,5,6\n7,8,1\n");
            Directory.CreateDirectory(dir);
            File.WriteAllText(Path.Combine(dir, "index.html"), "{\"lossHistory\": [1, 0.5]}\n");
        }
        return row.Replace("{m}", model).Replace("{b}", svgModel).Replace("{s}", csv).Replace("{d}", dir).Replace("{t}", Path.Combine(_dir, "t.json"))
            .Split(' ');
    }

    [Theory]
    [MemberData(nameof(SameFile))]
    public void An_Output_Naming_An_Input_Or_Another_Output_Is_Refused_Before_Any_Work(string row, string output, string other, string kept)
    {
        var args = Arguments(row);
        string keptPath = Arguments(kept)[0];
        byte[] before = File.ReadAllBytes(keptPath);
        var filesBefore = Directory.GetFileSystemEntries(_dir, "*", SearchOption.AllDirectories).Order().ToArray();
        var (code, stdout, err) = CliTests.Run(args);
        Assert.True(code == 2, $"exit {code}: {stdout}{err}");
        string line = Assert.Single(err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains($"{output} and {other} name the same file", line);
        Assert.Equal(before, File.ReadAllBytes(keptPath));
        Assert.Equal(filesBefore, Directory.GetFileSystemEntries(_dir, "*", SearchOption.AllDirectories).Order().ToArray()); // nothing written
    }

    /// <summary>Every output option of every command is in <see cref="SameFile"/> (or has nothing it could overwrite): a new output must be declared.</summary>
    [Fact]
    public void Every_Output_Option_Of_Every_Command_Is_Checked()
    {
        // A row covers its command's two named options (the second is an input or another output).
        var covered = SameFile().SelectMany(row => new[] { $"{((string)row[0]).Split(' ')[0]} {row[1]}", $"{((string)row[0]).Split(' ')[0]} {row[2]}" }).ToHashSet();
        var (_, help, _) = CliTests.Run("--help");
        var commands = Regex.Matches(help[help.IndexOf("Commands:", StringComparison.Ordinal)..], @"^  ([a-z-]+)  ", RegexOptions.Multiline).Select(m => m.Groups[1].Value).ToList();
        Assert.Contains("train", commands);
        var outputs = new List<string>();
        foreach (var command in commands)
        {
            var (_, text, _) = CliTests.Run(command, "--help");
            var sub = text.Contains("Commands:", StringComparison.Ordinal)
                ? Regex.Matches(text[text.IndexOf("Commands:", StringComparison.Ordinal)..], @"^  ([a-z-]+)  ", RegexOptions.Multiline).Select(m => $"{command} {m.Groups[1].Value}").ToList()
                : [command];
            foreach (var name in sub)
            {
                var (_, options, _) = CliTests.Run([.. name.Split(' '), "--help"]);
                outputs.AddRange(Regex.Matches(options, @"^\s+(--out|--json|--plot|--report) <", RegexOptions.Multiline).Select(m => $"{name} {m.Groups[1].Value}"));
            }
        }
        Assert.Contains("train --out", outputs);
        Assert.Contains("verify --report", outputs);
        var missing = outputs.Where(o => !covered.Contains(o) && !AloneOutputs.Contains(o)).ToList();
        Assert.True(missing.Count == 0, "not checked against the inputs: " + string.Join(", ", missing));
    }

    [Fact]
    public void A_Symbolic_Link_Or_A_Hard_Link_To_An_Input_Is_The_Input()
    {
        Arguments("{s}");
        string csv = Path.Combine(_dir, "s.csv");
        byte[] before = File.ReadAllBytes(csv);
        string symbolic = Path.Combine(_dir, "link.csv");
        File.CreateSymbolicLink(symbolic, csv);
        string linkedDir = Path.Combine(_dir, "linked-dir");
        Directory.CreateSymbolicLink(linkedDir, _dir);
        var outs = new List<string> { symbolic, Path.Combine(linkedDir, "s.csv"), Path.Combine(_dir, "no-such-dir", "..", "s.csv") };
        if (OperatingSystem.IsLinux())
        {
            string hard = Path.Combine(_dir, "hard.csv");
            Assert.Equal(0, Link(csv, hard));
            outs.Add(hard);
        }
        foreach (var output in outs)
        {
            var (code, stdout, err) = CliTests.Run("init", "--data", csv, "--out", output);
            Assert.True(code == 2, $"{output}: exit {code}: {stdout}{err}");
            Assert.Contains("--out and --data name the same file", err);
            Assert.Equal(before, File.ReadAllBytes(csv));
        }
        // A different file is still fine.
        var (ok, o, e) = CliTests.Run("init", "--data", csv, "--out", Path.Combine(linkedDir, "other.json"));
        Assert.True(ok == 0, o + e);
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "link")]
#pragma warning disable SYSLIB1054
    private static extern int Link([System.Runtime.InteropServices.MarshalAs(System.Runtime.InteropServices.UnmanagedType.LPUTF8Str)] string existing,
        [System.Runtime.InteropServices.MarshalAs(System.Runtime.InteropServices.UnmanagedType.LPUTF8Str)] string created);
#pragma warning restore SYSLIB1054

    /// <summary>A writer that fails midway (a full disk, a file-size limit: an IOException; a bug: anything else) leaves the old file and no temporary.</summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_Writer_That_Throws_Midway_Leaves_The_Old_File_Intact_And_No_Temporary(bool ioFailure)
    {
        string path = Path.Combine(_dir, "model.json");
        File.WriteAllText(path, "the old model\n");
        void Write() => AtomicFile.Write(path, stream =>
        {
            stream.Write(new byte[1 << 16]); // half a file on the disk
            stream.Flush();
            throw ioFailure ? new IOException("No space left on device") : new InvalidOperationException("a bug in the writer");
        });
        if (ioFailure)
        {
            var error = Assert.Throws<LandscapeInputException>(Write);
            Assert.Contains("cannot write", error.Message);
            Assert.Contains("No space left on device", error.Message);
        }
        else
        {
            Assert.Throws<InvalidOperationException>(Write);
        }
        Assert.Equal("the old model\n", File.ReadAllText(path));
        Assert.Equal(["model.json"], Directory.GetFileSystemEntries(_dir).Select(f => Path.GetFileName(f)!).ToArray());
    }

    [Fact]
    public void A_Target_Behind_A_Symbolic_Link_Is_Replaced_And_The_Link_And_Permissions_Kept()
    {
        string target = Path.Combine(_dir, "real.json");
        File.WriteAllText(target, "old\n");
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(target, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
        string link = Path.Combine(_dir, "link.json");
        File.CreateSymbolicLink(link, "real.json");
        AtomicFile.WriteAllText(link, "new\n");
        Assert.Equal("real.json", new FileInfo(link).LinkTarget);
        Assert.Equal("new\n", File.ReadAllText(target));
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(target));
        }
        Assert.Equal(["link.json", "real.json"], Directory.GetFileSystemEntries(_dir).Select(f => Path.GetFileName(f)!).Order().ToArray());
    }

    [SkippableFact]
    public void A_Private_File_Replaces_The_Old_One_Readable_By_Its_Owner_Only()
    {
        Skip.If(OperatingSystem.IsWindows(), "file modes are Unix's");
        // A cluster's private key (cluster init --tls) over a file that was readable by everyone: 0600 after, no temporary left.
        string key = Path.Combine(_dir, "worker-0.key");
        File.WriteAllText(key, "old\n");
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(key, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
            AtomicFile.WritePrivateText(key, "secret\n");
            Assert.Equal("secret\n", File.ReadAllText(key));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(key));
            AtomicFile.WritePrivateText(Path.Combine(_dir, "new.key"), "fresh\n");
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(_dir, "new.key")));
        }
        Assert.Equal(["new.key", "worker-0.key"], Directory.GetFileSystemEntries(_dir).Select(f => Path.GetFileName(f)!).Order().ToArray());
    }

    /// <summary>What writes a file: any of these outside AtomicFile.cs bypasses the temporary file and the rename.</summary>
    private static readonly Regex Writes = new(
        @"(?<![A-Za-z])File\.(WriteAll|AppendAll|Create\b|CreateText|OpenWrite|Move|Copy|Replace)|new\s+(FileStream|StreamWriter)\s*\(|FileMode\.(Create|Append|OpenOrCreate|Truncate)|\.Save(Png|Svg|Jpeg|Bmp|Webp)\s*\(",
        RegexOptions.Compiled);

    /// <summary>
    /// Sources allowed to write outside <see cref="AtomicFile"/>: AtomicFile itself, and ElfVersionNeeds.cs, whose
    /// writing part is the MSBuild task that patches the shipped native library at build time (compiled out of the
    /// library by <c>#if !LOSSLANDSCAPE_LIBRARY</c>), not a command's output; and OutputDirectory.cs, whose probe of a
    /// directory's writability creates a uniquely named hidden file that the system deletes on close (nothing is replaced).
    /// </summary>
    private static readonly HashSet<string> AllowedWriters = ["AtomicFile.cs", "ElfVersionNeeds.cs", "OutputDirectory.cs"];

    [Fact]
    public void No_Source_Writes_A_File_Except_Through_AtomicFile()
    {
        string root = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(root, "LossLandscape.sln")))
        {
            root = Path.GetDirectoryName(root) ?? throw new InvalidOperationException("the repository root (LossLandscape.sln) is not above the test binaries");
        }
        var sources = Directory.GetFiles(Path.Combine(root, "src"), "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                && !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
            .ToList();
        Assert.Contains(sources, f => f.EndsWith("ModelFile.cs", StringComparison.Ordinal));
        var offenders = new List<string>();
        int allowedHits = 0;
        foreach (var file in sources)
        {
            var lines = File.ReadAllLines(file);
            for (int i = 0; i < lines.Length; i++)
            {
                string code = lines[i].TrimStart();
                if (code.StartsWith("//", StringComparison.Ordinal) || !Writes.IsMatch(code))
                {
                    continue;
                }
                if (AllowedWriters.Contains(Path.GetFileName(file)))
                {
                    allowedHits++;
                }
                else
                {
                    offenders.Add($"{Path.GetRelativePath(root, file)}:{i + 1}: {code}");
                }
            }
        }
        Assert.True(allowedHits > 0, "the pattern no longer matches AtomicFile's own write: the scan has gone blind");
        Assert.True(offenders.Count == 0, "writes outside AtomicFile:\n" + string.Join("\n", offenders));
    }
}
