using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using TorchSharp;

namespace LossLandscape.Engine;

/// <summary>
/// One place that prepares TorchSharp for the library: its native library loaded (on an older libstdc++ too, see
/// <see cref="NativeLibraryRoute"/>), float64 as the default dtype (geometry is decided in float64: ranks and counts
/// of zero eigenvalues), the CPU device, and transparent huge pages for large CPU tensors.
/// </summary>
/// <remarks>
/// <para>A user never has to call <see cref="EnsureInitialized"/>: the library's module initializer calls it when the
/// runtime first compiles a method that uses a LossLandscape type, which is before that method's body runs, so a
/// TorchSharp module built there (<c>nn.Sequential(…)</c> followed by <c>new ModuleModel(…)</c>) is already float64;
/// and every entry point (<see cref="Data.Dataset"/>, <see cref="Models.ModuleModel"/>, the model files,
/// <see cref="Geometry.ResidualMap"/>) calls it again, which costs a flag test, and throws there the one clear
/// exception if the native library cannot be loaded. Only code that uses TorchSharp in a method that runs before any
/// method mentioning a LossLandscape type is compiled needs to call it first itself.</para>
/// <para>
/// libtorch backs allocations of 2 MB and more with transparent huge pages when the environment variable
/// <c>THP_MEM_ALLOC_ENABLE</c> is set (c10's CPU allocator, PyTorch ≥ 2.1). A dense Jacobian is gigabytes
/// of fresh memory, and with 4 kB pages the kernel's page faults cost more than computing it (bench/README.md,
/// jacobian). The variable is set with libc's setenv before libtorch allocates anything, unless the user
/// set it already; <c>LOSSLANDSCAPE_NO_THP=1</c> turns this off.</para>
/// </remarks>
public static class TorchRuntime
{
    private static readonly object Gate = new();
    private static volatile bool _initialized;

    /// <summary>The device every tensor of the library lives on.</summary>
    public static torch.Device Device => torch.CPU;

    /// <summary>Whether huge pages were requested for large tensors.</summary>
    public static bool HugePages { get; private set; }

    /// <summary>How TorchSharp's native library was loaded (<see cref="Engine.NativeLibraryRoute.CompatibleCopy"/> on a libstdc++ older than GCC 13's).</summary>
    public static NativeLibraryRoute NativeLibraryRoute => LibTorchSharpLoader.Route;

    /// <summary>The <c>libLibTorchSharp.so</c> that was loaded, when known.</summary>
    public static string? NativeLibraryPath => LibTorchSharpLoader.LoadedPath;

    /// <summary>
    /// Loads TorchSharp's native library and sets float64 as the default dtype. Safe to call from every entry point,
    /// any number of times; after the first success it only tests a flag.
    /// </summary>
    /// <exception cref="DllNotFoundException">The native library cannot be loaded; the message names the cause.</exception>
    public static void EnsureInitialized()
    {
        if (_initialized)
        {
            return;
        }
        lock (Gate)
        {
            if (_initialized)
            {
                return;
            }
            RequestHugePages();
            LibTorchSharpLoader.EnsureLoaded();
            torch.set_default_dtype(torch.float64);
            _initialized = true;
        }
    }

    /// <summary>Runs <see cref="EnsureInitialized"/> when the library is first used; see the remarks of <see cref="TorchRuntime"/>.</summary>
#pragma warning disable CA2255 // A library's module initializer: here it is the point, the set-up must precede the user's first TorchSharp module.
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void InitializeOnFirstUse()
    {
        try
        {
            EnsureInitialized();
        }
        catch (Exception)
        {
            // A module initializer that throws makes every type of the assembly unusable. The entry point that runs
            // next calls EnsureInitialized again and throws the failure there, with its message.
        }
    }

    private static void RequestHugePages()
    {
        if (!OperatingSystem.IsLinux() || Environment.GetEnvironmentVariable("LOSSLANDSCAPE_NO_THP") == "1")
        {
            return;
        }
        try
        {
            // .NET keeps its own copy of the environment on Unix; libtorch reads the native one.
            HugePages = SetEnv("THP_MEM_ALLOC_ENABLE", "1", overwrite: 0) == 0;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            HugePages = false;
        }
    }

#pragma warning disable SYSLIB1054 // LibraryImport would need unsafe code for one call at start-up.
    [DllImport("libc", EntryPoint = "setenv")]
    private static extern int SetEnv([MarshalAs(UnmanagedType.LPUTF8Str)] string name, [MarshalAs(UnmanagedType.LPUTF8Str)] string value, int overwrite);
#pragma warning restore SYSLIB1054
}
