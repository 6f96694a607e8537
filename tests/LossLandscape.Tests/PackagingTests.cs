using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using LossLandscape.Engine;
using LossLandscape.Tests.Packaging;
using Xunit.Abstractions;

namespace LossLandscape.Tests;

/// <summary>
/// The packages as a user meets them: the library packed and referenced from a fresh project outside the repository
/// (PackageReference, and ProjectReference), and the CLI packed and installed as a .NET tool. Each builds and runs a
/// real program in a temporary folder. They take minutes (packing libtorch into the tool), run after the rest of the
/// suite (their collection is not parallel), and can be left out with <c>--filter "Category!=Packaging"</c>.
/// </summary>
[Trait("Category", "Packaging")]
[Collection(PackagingCollection.Name)]
public sealed class PackagingTests(PackagingWorkspace workspace, ITestOutputHelper output) : IClassFixture<PackagingWorkspace>
{
    [Fact]
    public void Package_Consumer_Builds_And_Computes_The_Same_Loss_With_The_Build_Time_Fix()
    {
        var feed = workspace.LibraryFeed(output);
        string project = workspace.NewConsumer("package-consumer", $"""<PackageReference Include="LossLandscape" Version="{workspace.Version}" />""", output, feed);
        var printed = workspace.BuildAndRun(project, output);

        AssertSameComputation(printed);
        // The package's buildTransitive targets fixed the output copy, so the library loaded as it was written there.
        Assert.Equal(nameof(NativeLibraryRoute.AsShipped), printed["route"]);
        Assert.StartsWith(project, printed["library"]);
        var need = PackagingWorkspace.Glibcxx332(printed["library"]);
        Assert.Equal(PackagingWorkspace.SystemLacksGlibcxx332(), need.Weak);
    }

    [Fact]
    public void Project_Consumer_Builds_And_Computes_The_Same_Loss_With_The_Run_Time_Fix()
    {
        string library = Path.Combine(workspace.Source, "src", "LossLandscape", "LossLandscape.csproj");
        string project = workspace.NewConsumer("project-consumer", $"""<ProjectReference Include="{library}" />""", output, feed: null);
        var printed = workspace.BuildAndRun(project, output);

        AssertSameComputation(printed);
        // A ProjectReference imports none of the library's targets: the output copy is as TorchSharp ships it, and
        // where this system's libstdc++ lacks GLIBCXX_3.4.32 the library loaded a weakened copy from the user's cache.
        string shipped = Path.Combine(project, "bin", "Release", "net10.0", "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        Assert.False(PackagingWorkspace.Glibcxx332(shipped).Weak);
        if (PackagingWorkspace.SystemLacksGlibcxx332())
        {
            Assert.Equal(nameof(NativeLibraryRoute.CompatibleCopy), printed["route"]);
            Assert.StartsWith(workspace.CacheHome, printed["library"]);
            Assert.True(PackagingWorkspace.Glibcxx332(printed["library"]).Weak);
        }
        else
        {
            Assert.Equal(nameof(NativeLibraryRoute.AsShipped), printed["route"]);
        }
    }

    [Fact]
    public void Cli_Installs_As_A_Dotnet_Tool_And_Verify_Passes()
    {
        var feed = workspace.CliFeed(output);
        string toolPath = Path.Combine(workspace.Root, "tools");
        var install = workspace.Dotnet(workspace.Root, output, "tool", "install", "--tool-path", toolPath, "--add-source", feed, "--ignore-failed-sources", "--version", workspace.Version, "LossLandscape.Cli");
        Assert.True(install.ExitCode == 0, install.Output);
        string landscape = Path.Combine(toolPath, "landscape");
        Assert.True(File.Exists(landscape), $"no {landscape} after installing the tool");

        var verify = workspace.Run(landscape, workspace.Root, output, "verify");
        Assert.True(verify.ExitCode == 0, verify.Output);
        var rows = verify.Output.Split('\n').Where(l => l.Contains("PASS", StringComparison.Ordinal) || l.Contains("FAIL", StringComparison.Ordinal)).ToArray();
        Assert.NotEmpty(rows);
        Assert.DoesNotContain(rows, l => l.Contains("FAIL", StringComparison.Ordinal));
        Assert.Contains("checks passed", verify.Output, StringComparison.Ordinal);
    }

    /// <summary>The consumer's module was float64 from its creation (the library's set-up ran first), and its loss is the one computed here.</summary>
    private static void AssertSameComputation(IReadOnlyDictionary<string, string> printed)
    {
        var expected = ConsumerProgram.Compute();
        Assert.Equal(nameof(TorchSharp.torch.ScalarType.Float64), printed["dtype"]);
        double loss = double.Parse(printed["loss"], CultureInfo.InvariantCulture);
        Assert.True(Math.Abs(loss - expected.Loss) <= Tolerances.ExactAgreement * Math.Max(1.0, Math.Abs(expected.Loss)), $"consumer printed L = {loss:R}, in-process L = {expected.Loss:R}");
    }
}

/// <summary>The packaging tests run one at a time, after the parallel part of the suite: they build, pack and run whole programs.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class PackagingCollection
{
    /// <summary>The collection's name.</summary>
    public const string Name = "Packaging";
}

/// <summary>
/// A temporary folder outside the repository with a copy of the sources the packages are made from (never the live
/// tree, which the running test build uses), a package feed, the consumer projects, an isolated NuGet package folder and
/// cache home; deleted at the end.
/// </summary>
public sealed class PackagingWorkspace : IDisposable
{
    /// <summary>The longest a single dotnet command may take: packing the tool compresses about 700 MB.</summary>
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromMinutes(10);

    /// <summary>What the packages are made from: the library, the CLI, the build fix and the shared build files.</summary>
    private static readonly string[] SourcePaths =
        ["src/LossLandscape", "src/LossLandscape.Cluster", "src/LossLandscape.Cli", "build", "Directory.Build.props", "Directory.Build.targets", "Directory.Packages.props", "global.json", "README.md", "LICENSE"];

    private readonly Lock _gate = new();
    private string? _libraryFeed;
    private string? _cliFeed;

    /// <summary>Creates the folder and copies the sources.</summary>
    public PackagingWorkspace()
    {
        RepositoryRoot = FindRepositoryRoot();
        Root = Directory.CreateTempSubdirectory("losslandscape-packaging-").FullName;
        if (Root.StartsWith(RepositoryRoot, StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"the temporary folder {Root} is inside the repository; its Directory.Build files would apply to the consumers");
        }
        Source = Path.Combine(Root, "source");
        Feed = Path.Combine(Root, "feed");
        CacheHome = Path.Combine(Root, "cache");
        Directory.CreateDirectory(Feed);
        Directory.CreateDirectory(CacheHome);
        foreach (string path in SourcePaths)
        {
            Copy(Path.Combine(RepositoryRoot, path), Path.Combine(Source, path));
        }
    }

    /// <summary>The repository the tests run from.</summary>
    public string RepositoryRoot { get; }

    /// <summary>The temporary folder.</summary>
    public string Root { get; }

    /// <summary>The copy of the sources.</summary>
    public string Source { get; }

    /// <summary>The local package feed.</summary>
    public string Feed { get; }

    /// <summary><c>XDG_CACHE_HOME</c> of every program run here, so the user's own cache is never written.</summary>
    public string CacheHome { get; }

    /// <summary>The version in Directory.Build.props, read from the built library (the same property).</summary>
    public string Version { get; } = typeof(TorchRuntime).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()!.InformationalVersion.Split('+')[0];

    /// <summary>The feed with the library package, packed on first use.</summary>
    public string LibraryFeed(ITestOutputHelper output)
    {
        lock (_gate)
        {
            _libraryFeed ??= Pack("src/LossLandscape", output);
            return _libraryFeed;
        }
    }

    /// <summary>The feed with the tool package, packed on first use.</summary>
    public string CliFeed(ITestOutputHelper output)
    {
        lock (_gate)
        {
            _cliFeed ??= Pack("src/LossLandscape.Cli", output);
            return _cliFeed;
        }
    }

    /// <summary>
    /// A new console project <paramref name="name"/> with the given reference and <see cref="ConsumerProgram"/> as its
    /// program. With a feed, its nuget.config adds the feed to the machine's sources, restores into a package folder of
    /// its own and reads everything else from the machine's package folder (a fallback folder NuGet never writes).
    /// </summary>
    public string NewConsumer(string name, string reference, ITestOutputHelper output, string? feed)
    {
        string project = Path.Combine(Root, name);
        Directory.CreateDirectory(project);
        File.WriteAllText(Path.Combine(project, name + ".csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <Nullable>enable</Nullable>
                <ImplicitUsings>enable</ImplicitUsings>
              </PropertyGroup>
              <ItemGroup>
                {reference}
              </ItemGroup>
            </Project>
            """);
        File.WriteAllText(Path.Combine(project, "Program.cs"), "LossLandscape.Tests.Packaging.ConsumerProgram.PrintResult();\n");
        File.Copy(Path.Combine(RepositoryRoot, "tests", "LossLandscape.Tests", "Packaging", "ConsumerProgram.cs"), Path.Combine(project, "ConsumerProgram.cs"));
        if (feed is not null)
        {
            string fallback = MachinePackageFolder();
            File.WriteAllText(Path.Combine(project, "nuget.config"), $"""
                <?xml version="1.0" encoding="utf-8"?>
                <configuration>
                  <config>
                    <add key="globalPackagesFolder" value="{Path.Combine(Root, name + "-packages")}" />
                  </config>
                  <packageSources>
                    <add key="losslandscape-test-feed" value="{feed}" />
                  </packageSources>
                  <fallbackPackageFolders>
                    <add key="machine" value="{fallback}" />
                  </fallbackPackageFolders>
                </configuration>
                """);
        }
        output.WriteLine($"consumer {project}");
        return project;
    }

    /// <summary>Builds the consumer in Release, runs it and returns its <c>key=value</c> lines.</summary>
    public IReadOnlyDictionary<string, string> BuildAndRun(string project, ITestOutputHelper output)
    {
        var build = Dotnet(project, output, "build", "-c", "Release");
        Assert.True(build.ExitCode == 0, build.Output);
        string dll = Path.Combine(project, "bin", "Release", "net10.0", Path.GetFileName(project) + ".dll");
        var run = Dotnet(project, output, dll);
        Assert.True(run.ExitCode == 0, run.Output);
        return run.Output.Split('\n')
            .Select(l => l.Trim())
            .Where(l => l.Contains('=', StringComparison.Ordinal))
            .Select(l => l.Split('=', 2))
            .ToDictionary(kv => kv[0], kv => kv[1]);
    }

    /// <summary>Runs the dotnet host with <paramref name="arguments"/>.</summary>
    public ProcessResult Dotnet(string directory, ITestOutputHelper output, params string[] arguments)
    {
        // MSBuild and the compiler must not leave servers behind that hold this process's output pipes open.
        string[] noServers = arguments is ["build" or "pack", ..] ? ["--disable-build-servers", "-nodeReuse:false"] : [];
        return Run(DotnetHost(), directory, output, [.. arguments, .. noServers]);
    }

    /// <summary>Runs <paramref name="file"/> with a clean environment: no variables of the running test host's MSBuild, this workspace's cache home.</summary>
    public ProcessResult Run(string file, string directory, ITestOutputHelper output, params string[] arguments)
    {
        var start = new ProcessStartInfo(file)
        {
            WorkingDirectory = directory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string a in arguments)
        {
            start.ArgumentList.Add(a);
        }
        foreach (string key in start.Environment.Keys.Where(k => k.StartsWith("MSBuild", StringComparison.OrdinalIgnoreCase) || k.StartsWith("VSTEST", StringComparison.OrdinalIgnoreCase)).ToArray())
        {
            start.Environment.Remove(key);
        }
        start.Environment["XDG_CACHE_HOME"] = CacheHome;
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        start.Environment["DOTNET_NOLOGO"] = "1";
        start.Environment["DOTNET_SKIP_FIRST_TIME_EXPERIENCE"] = "1";
        start.Environment["MSBUILDDISABLENODEREUSE"] = "1";

        var text = new System.Text.StringBuilder();
        var clock = Stopwatch.StartNew();
        using var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) { lock (text) { text.AppendLine(e.Data); } } };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { lock (text) { text.AppendLine(e.Data); } } };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (!process.WaitForExit(CommandTimeout))
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
            return new ProcessResult(-1, $"timed out after {CommandTimeout}: {file} {string.Join(' ', arguments)}\n{text}");
        }
        process.WaitForExit(); // drains the asynchronous readers
        string all;
        lock (text)
        {
            all = text.ToString();
        }
        output.WriteLine($"[{clock.Elapsed.TotalSeconds:F1} s] {Path.GetFileName(file)} {string.Join(' ', arguments)} → exit {process.ExitCode}");
        return new ProcessResult(process.ExitCode, all);
    }

    /// <summary>The GLIBCXX_3.4.32 requirement of the libLibTorchSharp.so at <paramref name="path"/>.</summary>
    internal static ElfVersionNeed Glibcxx332(string path) =>
        new ElfVersionNeeds(File.ReadAllBytes(path)).Needs.Single(n => n.File == LibstdcxxCompatibility.Library && n.Version == "GLIBCXX_3.4.32");

    /// <summary>Whether this system's libstdc++ lacks GLIBCXX_3.4.32 (GCC 12's and older do).</summary>
    internal static bool SystemLacksGlibcxx332() =>
        !new ElfVersionNeeds(File.ReadAllBytes(LibstdcxxCompatibility.SystemLibraryPath()!)).DefinedVersions.Contains("GLIBCXX_3.4.32");

    /// <inheritdoc />
    public void Dispose()
    {
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
            // A process that outlived its test may still hold a file; the folder is in the system's temporary directory.
        }
    }

    private string Pack(string projectPath, ITestOutputHelper output)
    {
        var pack = Dotnet(Source, output, "pack", projectPath, "-c", "Release", "-o", Feed);
        Assert.True(pack.ExitCode == 0, pack.Output);
        foreach (var package in Directory.GetFiles(Feed, "*.nupkg"))
        {
            output.WriteLine($"{Path.GetFileName(package)}: {new FileInfo(package).Length / 1e6:F1} MB");
        }
        return Feed;
    }

    private static string DotnetHost() =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host : "dotnet";

    private static string MachinePackageFolder() =>
        Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } folder
            ? folder
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");

    private static string FindRepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "LossLandscape.sln")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException($"no LossLandscape.sln above {AppContext.BaseDirectory}");
    }

    /// <summary>Copies a file or a folder, leaving out build outputs (bin/, obj/).</summary>
    private static void Copy(string from, string to)
    {
        if (File.Exists(from))
        {
            Directory.CreateDirectory(Path.GetDirectoryName(to)!);
            File.Copy(from, to);
            return;
        }
        Directory.CreateDirectory(to);
        foreach (var file in Directory.EnumerateFiles(from))
        {
            File.Copy(file, Path.Combine(to, Path.GetFileName(file)));
        }
        foreach (var dir in Directory.EnumerateDirectories(from).Where(d => Path.GetFileName(d) is not ("bin" or "obj")))
        {
            Copy(dir, Path.Combine(to, Path.GetFileName(dir)));
        }
    }
}

/// <summary>A finished process: its exit code and its standard output and error, interleaved.</summary>
public sealed record ProcessResult(int ExitCode, string Output);
