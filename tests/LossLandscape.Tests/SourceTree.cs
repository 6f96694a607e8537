using System.Reflection;

namespace LossLandscape.Tests;

/// <summary>Where the repository and the build outputs are, found from the test assembly's own location.</summary>
internal static class SourceTree
{
    /// <summary>The repository root: the nearest directory above the test assembly that holds <c>LossLandscape.sln</c>.</summary>
    public static string Root { get; } = FindRoot();

    /// <summary>The build configuration of the test assembly (Debug or Release), the one its sibling projects were built in.</summary>
    public static string Configuration { get; } =
        typeof(SourceTree).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Release";

    /// <summary>The target framework folder of the build outputs (net10.0): the test assembly's own.</summary>
    public static string TargetFramework { get; } = new DirectoryInfo(AppContext.BaseDirectory).Name;

    /// <summary>A path under the repository root.</summary>
    public static string Path(params string[] parts) => System.IO.Path.Combine([Root, .. parts]);

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(System.IO.Path.Combine(dir.FullName, "LossLandscape.sln")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException($"no LossLandscape.sln above {AppContext.BaseDirectory}");
    }
}
