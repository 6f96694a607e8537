namespace LossLandscape.Tests;

/// <summary>
/// README "Your own network": every <c>landscape …</c> command of its shell blocks runs as written and exits 0, in a
/// directory of the test's own where <c>net.pt</c> and <c>net2.pt</c> are the two Fashion-MNIST networks PyTorch trained
/// (<c>Fixtures/torchscript/make_fashion.py</c>); the commands that read <c>builtin:fashion-mnist</c> need Debian's package
/// (installed by <c>.ci/run</c>, which makes its absence a failure; elsewhere they are skipped). The C# block's lines are
/// lines of <c>examples/OwnTorchScript</c>, in order (<see cref="ExamplesTests"/> runs it).
/// </summary>
public sealed class OwnNetworkReadmeTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("landscape-own-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static string Section()
    {
        var readme = File.ReadAllText(SourceTree.Path("README.md")).ReplaceLineEndings("\n");
        int start = readme.IndexOf("\n## Your own network\n", StringComparison.Ordinal);
        Assert.True(start >= 0, "README.md has no section \"Your own network\"");
        int end = readme.IndexOf("\n## ", start + 1, StringComparison.Ordinal);
        return readme[start..end];
    }

    private static List<string> Block(string section, string language) =>
        [.. section.Split($"```{language}\n").Skip(1).SelectMany(b => b[..b.IndexOf("```", StringComparison.Ordinal)].Split('\n')).Select(l => l.Trim()).Where(l => l.Length > 0)];

    /// <summary>The two routes by the model their first command names: the commands of each, in order (later ones read what earlier ones wrote).</summary>
    public static TheoryData<string> Routes => new() { "net.pt", "cnn.json" };

    [SkippableTheory]
    [MemberData(nameof(Routes))]
    public void Every_Command_Of_A_Route_Runs_As_Written(string firstModel)
    {
        var commands = Block(Section(), "sh").Where(c => c.StartsWith("landscape ", StringComparison.Ordinal)).ToList();
        Assert.All(commands, c => Assert.DoesNotContain('\'', c)); // run without a shell: no quoting to undo
        bool fashion = firstModel == "net.pt";
        var route = commands.Where(c => c.Contains(" net.pt", StringComparison.Ordinal) == fashion).ToList();
        Assert.Contains($" {firstModel}", route[0], StringComparison.Ordinal);
        Assert.True(route.Count >= 5, $"the route of {firstModel} has {route.Count} commands");
        if (fashion)
        {
            FashionMnistTorchScriptTests.RequirePackage();
            string fixtures = Path.Combine(AppContext.BaseDirectory, "Fixtures", "torchscript");
            File.Copy(Path.Combine(fixtures, "fashion_a.pt"), Path.Combine(_dir, "net.pt"));
            File.Copy(Path.Combine(fixtures, "fashion_b.pt"), Path.Combine(_dir, "net2.pt"));
        }
        foreach (var command in route)
        {
            // File names are the directory's: a word ending in a file extension, or the word after --out.
            var words = command.Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1).ToArray();
            var args = words.Select((w, i) => w.EndsWith(".pt", StringComparison.Ordinal) || w.EndsWith(".json", StringComparison.Ordinal) || w.EndsWith(".png", StringComparison.Ordinal)
                || (i > 0 && words[i - 1] == "--out") ? Path.Combine(_dir, w) : w).ToArray();
            var (code, output, err) = CliTests.Run(args);
            Assert.True(code == 0, $"`{command}` exited {code}: {err}");
            Assert.False(string.IsNullOrWhiteSpace(output), $"`{command}` printed nothing");
        }
        Assert.True(File.Exists(Path.Combine(_dir, fashion ? "report/index.html" : "permuted.json")));
    }

    [Fact]
    public void The_CSharp_Block_Is_The_Start_Of_The_OwnTorchScript_Example()
    {
        var snippet = Block(Section(), "csharp");
        Assert.InRange(snippet.Count, 5, 16);
        var program = File.ReadAllText(SourceTree.Path("examples", "OwnTorchScript", "Program.cs")).ReplaceLineEndings("\n").Split('\n').Select(l => l.Trim()).ToList();
        int at = 0;
        foreach (var line in snippet)
        {
            int found = program.FindIndex(at, l => l == line);
            Assert.True(found >= 0, $"README line not in examples/OwnTorchScript/Program.cs (after line {at}): {line}");
            at = found + 1;
        }
    }
}
