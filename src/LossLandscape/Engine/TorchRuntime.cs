using System.Runtime.InteropServices;
using TorchSharp;

namespace LossLandscape.Engine;

/// <summary>
/// One place that prepares TorchSharp for the library: float64 as the default dtype (geometry is
/// decided in float64: ranks and counts of zero eigenvalues), the CPU device, and transparent huge
/// pages for large CPU tensors.
/// </summary>
/// <remarks>
/// libtorch backs allocations of 2 MB and more with transparent huge pages when the environment variable
/// <c>THP_MEM_ALLOC_ENABLE</c> is set (c10's CPU allocator, PyTorch ≥ 2.1). A dense Jacobian is gigabytes
/// of fresh memory, and with 4 kB pages the kernel's page faults cost more than computing it (bench/README.md,
/// jacobian). The variable is set with libc's setenv before libtorch allocates anything, unless the user
/// set it already; <c>LOSSLANDSCAPE_NO_THP=1</c> turns this off.
/// </remarks>
public static class TorchRuntime
{
    private static readonly object Gate = new();
    private static bool _initialized;

    /// <summary>The device every tensor of the library lives on.</summary>
    public static torch.Device Device => torch.CPU;

    /// <summary>Whether huge pages were requested for large tensors.</summary>
    public static bool HugePages { get; private set; }

    /// <summary>Sets float64 as the default dtype. Safe to call from every entry point, any number of times.</summary>
    public static void EnsureInitialized()
    {
        lock (Gate)
        {
            if (_initialized)
            {
                return;
            }
            RequestHugePages();
            torch.set_default_dtype(torch.float64);
            _initialized = true;
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
