using System.Diagnostics;
using System.Globalization;
using LossLandscape.Data;
using LossLandscape.Engine;
using LossLandscape.Geometry;
using LossLandscape.Models;
using LossLandscape.Models.Activations;
using static TorchSharp.torch;

namespace LossLandscape.Bench;

/// <summary>
/// The empirical NTK K = JJᵀ (ℓd × ℓd, one-hot digits) by the library's per-layer factors against PyTorch's own route:
/// functorch <c>vmap(jacrev(f))</c> for the per-sample Jacobians, then J Jᵀ (bench/pytorch/ntk_pytorch.py), on the same model file
/// (written by <see cref="ModelFile.Save"/>) and the same inputs, same machine; each route the median of <c>repeats</c> runs
/// (at least 5) after a warm-up run, with min and max (the script repeats its own runs). Accuracy: the largest
/// |K_ours − K_torch| over the largest |K|.
/// </summary>
public static class Ntk
{
    /// <summary>Runs the comparison at d rows and the given hidden widths (comma separated).</summary>
    public static void Run(int rows, string widthsText, string activation, string python, int repeats)
    {
        int[] widths = widthsText.Split(',').Select(w => int.Parse(w, CultureInfo.InvariantCulture)).ToArray();
        var full = DatasetLoader.Load("builtin:digits", TargetSpec.Classes("digit")).Take(rows);
        // Pixels 0–16 scaled to [0, 1] in the data itself, so the model file carries no scaling for the Python side to replicate.
        using var scaledInputs = full.InputsTensor() / 16.0;
        var data = new Dataset(scaledInputs, full.TargetsTensor());
        var mlp = new Mlp(data.InputDim, widths.Select(w => new HiddenLayer(w, ActivationRegistry.Get(activation))).ToArray(), data.OutputDim);
        var parameters = mlp.InitialParameters(2);
        using var model = new NetworkModel(mlp, parameters);
        using var map = new ResidualMap(model, data);
        string dir = Path.Combine(Path.GetTempPath(), $"ntk-bench-{Environment.ProcessId}");
        Directory.CreateDirectory(dir);
        try
        {
            Compare(map, mlp, parameters, data, dir, widthsText, activation, python, repeats);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static void Compare(ResidualMap map, Mlp mlp, double[] parameters, Dataset data, string dir, string widthsText, string activation, string python, int repeats)
    {
        string modelPath = Path.Combine(dir, "model.json"), inputPath = Path.Combine(dir, "inputs.bin"), outPath = Path.Combine(dir, "k_torch.bin");
        ModelFile.Save(modelPath, new NetworkPoint(mlp, parameters));
        WriteDoubles(inputPath, data.InputsTensor().contiguous().data<double>().ToArray());
        long m = map.Constraints, n = mlp.ParameterCount;
        Console.WriteLine(FormattableString.Invariant(
            $"NTK comparison: digits first {data.Count} rows (pixels/16), one-hot (ℓd = {m}), MLP {data.InputDim}-{widthsText.Replace(',', '-')}-{data.OutputDim} {activation}, n = {n:N0}; PyTorch's J is {m * n * 8 / 1e9:0.00} GB"));

        ScaleBench.ResetPeak();
        Tensor? ours = null;
        // The previous run's K is freed before each run, untimed: the peak holds one K.
        var oursSeconds = BenchRunner.Time(repeats, () => ours = GramMatrix.Compute(map), before: () => ours?.Dispose());
        double oursPeak = ScaleBench.Peak();

        var script = HessianBench.FindUp(Path.Combine("bench", "pytorch", "ntk_pytorch.py")) ?? "bench/pytorch/ntk_pytorch.py";
        var start = new ProcessStartInfo(python, [script, modelPath, inputPath,
            data.Count.ToString(CultureInfo.InvariantCulture), data.InputDim.ToString(CultureInfo.InvariantCulture), outPath,
            get_num_threads().ToString(CultureInfo.InvariantCulture), repeats.ToString(CultureInfo.InvariantCulture)])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {python}");
        string stdout = process.StandardOutput.ReadToEnd();
        string stderr = process.StandardError.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            Console.WriteLine($"PyTorch route failed (exit {process.ExitCode}): {stderr.Trim().Split('\n').LastOrDefault()}");
            return;
        }
        var fields = stdout.Trim().Split('\n').Last().Split(' ');
        double D(int i) => double.Parse(fields[i], CultureInfo.InvariantCulture);
        var torchSeconds = new Timing(D(0), D(1), D(2), int.Parse(fields[3], CultureInfo.InvariantCulture));
        double torchPeak = D(4);
        string torchRoute = string.Join(' ', fields.Skip(5));
        using var theirs = tensor(ReadDoubles(outPath, m * m), dtype: float64).reshape(m, m);
        double scale = theirs.abs().max().item<double>();
        double difference = (ours! - theirs).abs().max().item<double>() / scale;
        Console.WriteLine();
        Console.WriteLine($"| route | time, median (min–max) of {repeats} after a warm-up | peak memory (VmHWM) | ratio of medians |");
        Console.WriteLine("|---|---|---|---|");
        Console.WriteLine(FormattableString.Invariant($"| LossLandscape: per-layer factors, K = Σₖ (δδᵀ) ⊙ (aaᵀ + 1), J never formed | {BenchRunner.S(oursSeconds)} | {oursPeak:0.00} GB (whole process) | 1 |"));
        Console.WriteLine(FormattableString.Invariant($"| PyTorch {torchRoute}, then J Jᵀ | {BenchRunner.S(torchSeconds)} | {torchPeak:0.00} GB | {torchSeconds.Median / oursSeconds.Median:0.0} × slower |"));
        Console.WriteLine(FormattableString.Invariant($"max |K_ours − K_torch| / max|K| = {difference:e2} (goal ≤ 1e−10)"));
        ours!.Dispose();
    }

    private static void WriteDoubles(string path, double[] values)
    {
        var bytes = new byte[values.Length * sizeof(double)];
        Buffer.BlockCopy(values, 0, bytes, 0, bytes.Length);
        File.WriteAllBytes(path, bytes);
    }

    private static double[] ReadDoubles(string path, long count)
    {
        var bytes = File.ReadAllBytes(path);
        if (bytes.LongLength != count * sizeof(double))
        {
            throw new InvalidDataException($"{path}: {bytes.Length} bytes, expected {count * sizeof(double)}");
        }
        var values = new double[count];
        Buffer.BlockCopy(bytes, 0, values, 0, bytes.Length);
        return values;
    }
}
