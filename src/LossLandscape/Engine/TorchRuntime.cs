using TorchSharp;

namespace LossLandscape.Engine;

/// <summary>
/// One place that prepares TorchSharp for the library: float64 as the default dtype (geometry is
/// decided in float64: ranks and counts of zero eigenvalues) and the CPU device.
/// </summary>
public static class TorchRuntime
{
    private static readonly object Gate = new();
    private static bool _initialized;

    /// <summary>The device every tensor of the library lives on.</summary>
    public static torch.Device Device => torch.CPU;

    /// <summary>Sets float64 as the default dtype. Safe to call from every entry point, any number of times.</summary>
    public static void EnsureInitialized()
    {
        lock (Gate)
        {
            if (_initialized)
            {
                return;
            }
            torch.set_default_dtype(torch.float64);
            _initialized = true;
        }
    }
}
