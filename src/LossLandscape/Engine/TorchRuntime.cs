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
/// <para>A user never has to call <see cref="EnsureInitialized"/>: every entry point (<see cref="Data.Dataset"/>,
/// <see cref="Models.ModuleModel"/>, <see cref="Models.NetworkModel"/>, <c>Problem.ResidualMap</c>) calls it,
/// which loads the native library and sets float64 as the default dtype once, then only tests a flag, and throws there
/// the one clear exception if the library cannot be loaded. A TorchSharp module built after the first library call is
/// float64; one built before it is float32, and <see cref="Models.ModuleModel"/> converts it exactly. The library's
/// module initializer (<see cref="InitializeOnFirstUse"/>), which runs when the runtime first compiles a method that
/// uses a LossLandscape type, does the part that loads nothing: it requests huge pages and subscribes the libstdc++
/// fallback, so that TorchSharp's own first load of its native library works even when user code comes first.</para>
/// <para>
/// libtorch backs allocations of 2 MB and more with transparent huge pages when the environment variable
/// <c>THP_MEM_ALLOC_ENABLE</c> is set (c10's CPU allocator, PyTorch ≥ 2.1). A dense Jacobian is gigabytes
/// of fresh memory, and with 4 kB pages the kernel's page faults cost more than computing it (bench/README.md,
/// jacobian). The variable is set with libc's setenv before libtorch allocates anything, unless the user
/// set it already; <c>LOSSLANDSCAPE_NO_THP=1</c> turns this off.</para>
/// <para>
/// Under an address-space limit (<c>ulimit -v</c>, RLIMIT_AS) glibc's malloc would reserve a 64 MB heap for each of up to
/// 8 × cores arenas (one per thread that meets contention: libtorch's intra- and inter-op pools, the CLR's threads), and
/// that reservation, not the memory used, exhausted 4 GB in <c>landscape verify</c> (issue 13). There the arenas are
/// capped at <see cref="ArenasUnderAddressSpaceLimit"/> with <c>mallopt(M_ARENA_MAX)</c> before libtorch starts its
/// threads; without a limit nothing changes.</para>
/// <para>
/// NNPACK, libtorch's fast float32 convolution, is switched off (<c>at::globalContext().setUserEnabledNNPACK(false)</c>,
/// <c>torch.backends.nnpack.set_flags(False)</c> in PyTorch): on a CPU it does not support, libtorch 2.10 asks for it at every
/// conv2d, before looking at the dtype, and logs "Could not initialize NNPACK! Reason: Unsupported hardware." to standard error
/// each time (thousands of lines for one Hessian spectrum of a convolutional network). NNPACK computes only float32, so no float64
/// result changes. <see cref="NnpackDisabled"/> says whether it was done (the symbols are libtorch's C++ ones, looked up by name).</para>
/// </remarks>
public static class TorchRuntime
{
    private static readonly object Gate = new();
    private static volatile bool _initialized;

    /// <summary>The device every tensor of the library lives on.</summary>
    public static torch.Device Device => torch.CPU;

    /// <summary>
    /// glibc malloc arenas allowed under an address-space limit: 2, the value with which <c>landscape verify</c> was
    /// measured to pass under <c>ulimit -v 4194304</c> (resident peak 0.4 GB) where the default (8 × cores) failed.
    /// </summary>
    public const int ArenasUnderAddressSpaceLimit = 2;

    /// <summary>Whether the malloc arenas were capped because the process runs under an address-space limit.</summary>
    public static bool ArenasCapped { get; private set; }

    /// <summary>Whether NNPACK was switched off in libtorch (see the remarks); false where its symbols were not found.</summary>
    public static bool NnpackDisabled { get; private set; }

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
            CapArenasUnderAddressSpaceLimit();
            LibTorchSharpLoader.EnsureLoaded();
            torch.set_default_dtype(torch.float64);
            DisableNnpack();
            _initialized = true;
        }
    }

    /// <summary>
    /// The part of the set-up that loads nothing, run when the library is first used (see the remarks of
    /// <see cref="TorchRuntime"/>): huge pages requested before libtorch's first allocation, and the libstdc++ fallback
    /// subscribed for TorchSharp's first native load. It touches no TorchSharp type, since TorchSharp's static
    /// constructor loads libtorch (about 0.4 s), which a command that never computes (<c>landscape --help</c>) must not pay.
    /// </summary>
#pragma warning disable CA2255 // A library's module initializer: it must run before user code's first TorchSharp call, and it only subscribes and sets an environment variable.
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void InitializeOnFirstUse()
    {
        lock (Gate)
        {
            RequestHugePages();
            CapArenasUnderAddressSpaceLimit();
            LibTorchSharpLoader.Register();
        }
    }

    /// <summary>at::globalContext().setUserEnabledNNPACK(false), by libtorch's exported C++ symbols (Itanium ABI: <c>this</c> first).</summary>
    private static void DisableNnpack()
    {
        if (NativeLibrary.TryLoad("torch_cpu", typeof(torch).Assembly, null, out var library)
            && NativeLibrary.TryGetExport(library, "_ZN2at13globalContextEv", out var globalContext)
            && NativeLibrary.TryGetExport(library, "_ZN2at7Context20setUserEnabledNNPACKEb", out var setEnabled))
        {
            var context = Marshal.GetDelegateForFunctionPointer<GlobalContext>(globalContext)();
            Marshal.GetDelegateForFunctionPointer<SetUserEnabledNnpack>(setEnabled)(context, 0);
            NnpackDisabled = true;
        }
    }

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate IntPtr GlobalContext();

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate void SetUserEnabledNnpack(IntPtr context, byte enabled);

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

    private static void CapArenasUnderAddressSpaceLimit()
    {
        if (ArenasCapped || !OperatingSystem.IsLinux())
        {
            return;
        }
        try
        {
            if (GetRLimit(RlimitAddressSpace, out var limit) == 0 && limit.Current != RlimInfinity)
            {
                ArenasCapped = MallOpt(MallocArenaMax, ArenasUnderAddressSpaceLimit) == 1;
            }
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            ArenasCapped = false; // not glibc: its allocator has no arenas to cap
        }
    }

    /// <summary>RLIMIT_AS in Linux's <c>sys/resource.h</c>.</summary>
    private const int RlimitAddressSpace = 9;

    /// <summary>RLIM_INFINITY on Linux: no limit.</summary>
    private const ulong RlimInfinity = ulong.MaxValue;

    /// <summary>M_ARENA_MAX in glibc's <c>malloc.h</c>.</summary>
    private const int MallocArenaMax = -8;

    [StructLayout(LayoutKind.Sequential)]
    private struct RLimit
    {
        public ulong Current;
        public ulong Maximum;
    }

#pragma warning disable SYSLIB1054 // LibraryImport would need unsafe code for calls at start-up.
    [DllImport("libc", EntryPoint = "getrlimit")]
    private static extern int GetRLimit(int resource, out RLimit limit);

    [DllImport("libc", EntryPoint = "mallopt")]
    private static extern int MallOpt(int parameter, int value);

    [DllImport("libc", EntryPoint = "setenv")]
    private static extern int SetEnv([MarshalAs(UnmanagedType.LPUTF8Str)] string name, [MarshalAs(UnmanagedType.LPUTF8Str)] string value, int overwrite);
#pragma warning restore SYSLIB1054
}
