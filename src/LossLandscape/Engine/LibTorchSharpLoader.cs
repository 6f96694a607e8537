using System.Runtime.InteropServices;
using System.Runtime.Loader;
using System.Security.Cryptography;
using TorchSharp;

namespace LossLandscape.Engine;

/// <summary>How TorchSharp's native library <c>libLibTorchSharp.so</c> was made to load.</summary>
public enum NativeLibraryRoute
{
    /// <summary>Not yet loaded.</summary>
    NotLoaded,

    /// <summary>The copy in the application's output loaded as it is (a newer libstdc++, or the build already fixed the copy).</summary>
    AsShipped,

    /// <summary>A copy with the libstdc++ requirement weakened, written to the user's cache, was loaded first (see <see cref="TorchRuntime.NativeLibraryPath"/>).</summary>
    CompatibleCopy,

    /// <summary>Not Linux x64: TorchSharp loads its library itself.</summary>
    LeftToTorchSharp,
}

/// <summary>
/// Makes TorchSharp's native library load on systems whose libstdc++ is older than the one it was built against, in any
/// application: one that references the LossLandscape package (whose buildTransitive targets usually fix the copy at
/// build time already), one that references the project, and an application built on one machine and run on another.
/// </summary>
/// <remarks>
/// <para><see cref="Register"/> (from the library's module initializer; it loads nothing) subscribes to the
/// <see cref="AssemblyLoadContext.ResolvingUnmanagedDll"/> event of TorchSharp's load context, which .NET raises only
/// after its own search for <c>LibTorchSharp</c> failed, whether TorchSharp's start-up, a P/Invoke or
/// <see cref="EnsureLoaded"/> asked. Then, and only if <see cref="LibstdcxxCompatibility"/> finds that the system's
/// libstdc++ lacks versions whose symbols nothing calls, a copy with those requirements marked weak is written to
/// <c>$XDG_CACHE_HOME/LossLandscape/native/&lt;hash&gt;/</c> (default <c>~/.cache</c>; a temporary file renamed into
/// place, so concurrent processes never see a partial file) and loaded, after the libraries it needs from beside the
/// original, and its handle is the event's answer. An application whose copy loads as shipped pays nothing. The NuGet
/// cache and the output folder are never written.</para>
/// <para>If loading still fails, <see cref="EnsureLoaded"/> throws one <see cref="DllNotFoundException"/> that names the
/// cause, instead of TorchSharp's message about a missing package reference.</para>
/// </remarks>
internal static class LibTorchSharpLoader
{
    private const string LibraryName = "LibTorchSharp";
    private const string FileName = "libLibTorchSharp.so";

    /// <summary>Hex digits of the SHA-256 of the compatible copy that name its cache folder: 64 bits, ample to tell TorchSharp versions apart.</summary>
    private const int HashDigits = 16;

    private static readonly object Gate = new();
    private static int _registered;
    private static IntPtr _compatible;
    private static DllNotFoundException? _failure;

    /// <summary>How the library was loaded.</summary>
    internal static NativeLibraryRoute Route { get; private set; }

    /// <summary>The file that was loaded, when known.</summary>
    internal static string? LoadedPath { get; private set; }

    private static bool Applies => OperatingSystem.IsLinux() && RuntimeInformation.ProcessArchitecture == Architecture.X64;

    /// <summary>Subscribes the fallback to failed loads of <c>LibTorchSharp</c>; loads nothing. Idempotent.</summary>
    internal static void Register()
    {
        if (!Applies || Interlocked.Exchange(ref _registered, 1) == 1)
        {
            return;
        }
        var torchAssembly = typeof(torch).Assembly;
        var context = AssemblyLoadContext.GetLoadContext(torchAssembly) ?? AssemblyLoadContext.Default;
        context.ResolvingUnmanagedDll += (assembly, name) =>
            name == LibraryName && assembly == torchAssembly ? LoadCompatibleCopy(torchAssembly) : IntPtr.Zero;
    }

    /// <summary>Makes <c>libLibTorchSharp.so</c> loaded, or throws one <see cref="DllNotFoundException"/> saying why it cannot be.</summary>
    internal static void EnsureLoaded()
    {
        if (Route != NativeLibraryRoute.NotLoaded)
        {
            return;
        }
        if (!Applies)
        {
            Route = NativeLibraryRoute.LeftToTorchSharp;
            return;
        }
        Register();
        var torchAssembly = typeof(torch).Assembly;
        // libtorch first, as TorchSharp's own loader does; a failure here shows up in the next load's message.
        NativeLibrary.TryLoad("torch_cpu", torchAssembly, null, out _);
        try
        {
            NativeLibrary.Load(LibraryName, torchAssembly, null);
        }
        catch (DllNotFoundException e)
        {
            throw _failure ?? Failure($"{FileName} does not load: {RelevantLines(e.Message)}");
        }
        if (Route == NativeLibraryRoute.NotLoaded)
        {
            Route = NativeLibraryRoute.AsShipped;
            LoadedPath = FindShipped(torchAssembly);
        }
    }

    /// <summary>The event handler: the compatible copy's handle, or zero (and the failure kept for <see cref="EnsureLoaded"/>).</summary>
    private static IntPtr LoadCompatibleCopy(System.Reflection.Assembly torchAssembly)
    {
        lock (Gate)
        {
            if (_compatible != IntPtr.Zero || _failure is not null)
            {
                return _compatible;
            }
            try
            {
                (_compatible, string path) = Resolve(torchAssembly);
                Route = NativeLibraryRoute.CompatibleCopy;
                LoadedPath = path;
            }
            catch (DllNotFoundException e)
            {
                _failure = e;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException)
            {
                _failure = Failure($"{FileName} does not load, and reading it to find out why failed: {e.Message}");
            }
            return _compatible;
        }
    }

    /// <summary>Finds the copy that failed, decides whether weakening a libstdc++ requirement makes it load, and loads that copy.</summary>
    private static (IntPtr Handle, string Path) Resolve(System.Reflection.Assembly torchAssembly)
    {
        string shipped = FindShipped(torchAssembly)
            ?? throw Failure($"{FileName} is not in the application's native search directories ({string.Join(", ", SearchDirectories(torchAssembly))}); the TorchSharp package puts it in runtimes/linux-x64/native of the output folder");
        string loadError;
        try
        {
            // By path: the loader's own message says why (this overload raises no event).
            return (NativeLibrary.Load(shipped), shipped);
        }
        catch (DllNotFoundException e)
        {
            loadError = RelevantLines(e.Message);
        }
        if (!loadError.Contains("version `", StringComparison.Ordinal))
        {
            // A missing dependency or a damaged file: no version requirement to weaken would help.
            throw Failure($"{shipped} does not load: {loadError}");
        }
        string stdcxx = LibstdcxxCompatibility.SystemLibraryPath()
            ?? throw Failure($"{shipped} does not load ({loadError}), and no {LibstdcxxCompatibility.Library} was found to check it against");
        var image = new ElfVersionNeeds(File.ReadAllBytes(shipped));
        var check = new LibstdcxxCompatibility(image, new ElfVersionNeeds(File.ReadAllBytes(stdcxx)).DefinedVersions);
        if (check.Missing.Count == 0)
        {
            throw Failure($"{shipped} does not load: {loadError}");
        }
        if (!check.CanWeaken)
        {
            throw Failure($"{shipped} {check.Describe()}, which {stdcxx} lacks; install the libstdc++ of GCC 13 or newer");
        }

        // The copy lives elsewhere, so $ORIGIN no longer finds libtorch: load what it needs from beside the original.
        string shippedDir = Path.GetDirectoryName(shipped)!;
        foreach (string needed in image.Needed)
        {
            string beside = Path.Combine(shippedDir, needed);
            if (File.Exists(beside))
            {
                NativeLibrary.TryLoad(beside, out _);
            }
        }
        return LoadCompatibleCopy(check.Weakened(), shipped);
    }

    /// <summary>Writes <paramref name="compatible"/> to the user's cache (else a private temporary folder) and loads it.</summary>
    private static (IntPtr Handle, string Path) LoadCompatibleCopy(byte[] compatible, string shipped)
    {
        string hash = Convert.ToHexStringLower(SHA256.HashData(compatible))[..HashDigits];
        string? cached = CacheRoot() is { } root ? TryWriteOnce(Path.Combine(root, "LossLandscape", "native", hash), compatible) : null;
        if (cached is not null)
        {
            return (Load(cached, shipped), cached);
        }
        // No writable cache: a folder only this user can read (mode 700), removed once the library is mapped.
        var temporary = Directory.CreateTempSubdirectory("losslandscape-native-");
        string path = Path.Combine(temporary.FullName, FileName);
        try
        {
            AtomicFile.WriteAllBytes(path, compatible);
            return (Load(path, shipped), path);
        }
        finally
        {
            temporary.Delete(recursive: true);
        }
    }

    private static IntPtr Load(string path, string shipped)
    {
        try
        {
            return NativeLibrary.Load(path);
        }
        catch (DllNotFoundException e)
        {
            throw Failure($"{shipped} needs a libstdc++ version this system lacks, and the copy with that requirement weakened ({path}) does not load either: {RelevantLines(e.Message)}");
        }
    }

    /// <summary>The file at <paramref name="folder"/>/libLibTorchSharp.so holding exactly <paramref name="bytes"/>, written by rename if absent or different; null if the folder cannot be written.</summary>
    private static string? TryWriteOnce(string folder, byte[] bytes)
    {
        string path = Path.Combine(folder, FileName);
        try
        {
            if (File.Exists(path) && File.ReadAllBytes(path).AsSpan().SequenceEqual(bytes))
            {
                return path;
            }
            AtomicFile.WriteAllBytes(path, bytes); // beside the target, renamed over it: another process never maps half a library
            return path;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or LandscapeInputException)
        {
            return null; // AtomicFile removed its temporary file
        }
    }

    /// <summary><c>$XDG_CACHE_HOME</c> when absolute (XDG Base Directory Specification), else <c>~/.cache</c>; null without a home.</summary>
    private static string? CacheRoot()
    {
        string? xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        if (!string.IsNullOrEmpty(xdg) && Path.IsPathFullyQualified(xdg))
        {
            return xdg;
        }
        string home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        return string.IsNullOrEmpty(home) ? null : Path.Combine(home, ".cache");
    }

    /// <summary>The copy TorchSharp's load by name would try first: the application's native search directories, then TorchSharp's own folder.</summary>
    private static string? FindShipped(System.Reflection.Assembly torchAssembly) =>
        SearchDirectories(torchAssembly).Select(d => Path.Combine(d, FileName)).FirstOrDefault(File.Exists);

    private static IEnumerable<string> SearchDirectories(System.Reflection.Assembly torchAssembly)
    {
        var directories = (AppContext.GetData("NATIVE_DLL_SEARCH_DIRECTORIES") as string ?? "")
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .ToList();
        if (Path.GetDirectoryName(torchAssembly.Location) is { Length: > 0 } own)
        {
            directories.Add(Path.Combine(own, "runtimes", "linux-x64", "native"));
            directories.Add(own);
        }
        return directories.Distinct();
    }

    /// <summary>
    /// What the dynamic loader said, on one line: .NET's header and its probes of file names that do not exist left out
    /// (lines like "…/LibTorchSharp.so: cannot open shared object file"), the rest kept ("libtorch_cpu.so: cannot open
    /// shared object file", "version `GLIBCXX_3.4.32' not found (required by …)").
    /// </summary>
    private static string RelevantLines(string message)
    {
        var lines = message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Where(l => !l.StartsWith("Unable to load shared library", StringComparison.Ordinal))
            .Where(l => !(l.Contains(LibraryName + ": cannot open", StringComparison.Ordinal) || l.Contains(LibraryName + ".so: cannot open", StringComparison.Ordinal)))
            .Distinct()
            .ToArray();
        return lines.Length > 0 ? string.Join("; ", lines) : message.ReplaceLineEndings(" ");
    }

    private static DllNotFoundException Failure(string cause) =>
        new($"TorchSharp's native library cannot be loaded: {cause}");
}
