using System.Globalization;
using LossLandscape.Curvature;
using LossLandscape.Data;
using LossLandscape.Engine;
using LossLandscape.Models;
using LossLandscape.Models.Activations;
using LossLandscape.Operators;

namespace LossLandscape.Bench;

/// <summary>
/// Issue 20 §2: peak memory of the full-data sums against the number of rows d at a fixed batch B. For each d (synthetic
/// Gaussian rows) and each quantity — evaluate (L, H, ∇L), Lanczos (the top 5 of ∇²L, 30 products) and the trace
/// (Hutchinson, 10 probes) — a child process builds the data and the model, resets its peak (VmHWM) and computes in batches
/// of B rows, then of all d rows at once. Printed: the computation's own peak (above the resident set after loading) and the
/// process's peak, each measured once (memory is deterministic here, not a timing).
/// With <c>--source file</c> the rows are first written to an .npz file (<see cref="ArrayFileSource.SaveNpz"/>) and the child reads
/// them from it batch by batch (<see cref="ArrayFileSource"/>), holding no copy of all rows, and only in batches of B.
/// Options: <c>--rows 100000,1000000</c>, <c>--batch 10000</c>, <c>--inputs 10</c>, <c>--hidden 64</c>,
/// <c>--source memory|file</c>, <c>--quantities evaluate,lanczos,trace</c>, <c>--lanczos-steps 30</c>.
/// </summary>
public static class MemoryBench
{
    /// <summary>Runs the table.</summary>
    public static int Run(string[] args)
    {
        var rows = BenchArgs.Text(args, "--rows", "100000,1000000").Split(',').Select(r => int.Parse(r, CultureInfo.InvariantCulture)).ToArray();
        int batch = BenchArgs.Int(args, "--batch", 10_000);
        int inputs = BenchArgs.Int(args, "--inputs", 10);
        int hidden = BenchArgs.Int(args, "--hidden", 64);
        string source = BenchArgs.Text(args, "--source", "memory");
        var quantities = BenchArgs.Text(args, "--quantities", "evaluate,lanczos,trace").Split(',');
        int steps = BenchArgs.Int(args, "--lanczos-steps", 30);
        if (source is not ("memory" or "file"))
        {
            throw new ArgumentException($"--source: '{source}' is not memory or file");
        }
        Console.WriteLine(FormattableString.Invariant($"synthetic Gaussian rows, p = {inputs}, ℓ = 1; MLP {inputs}-{hidden}-1 (smoolu); batch B = {batch}{(source == "file" ? ", rows read from an .npz file per batch" : " against all rows")}; Lanczos {steps} steps; one run per row (memory, not time)"));
        Console.WriteLine();
        Console.WriteLine("| quantity | rows d | B | computation's peak (above loaded) | process peak (VmHWM) | data, float64 (d × (p + ℓ)) |");
        Console.WriteLine("|---|---|---|---|---|---|");
        var dir = Directory.CreateTempSubdirectory("landscape-memory-bench-").FullName;
        try
        {
            foreach (int d in rows.Where(_ => source == "file"))
            {
                ArrayFileSource.SaveNpz(Rows(d, inputs), Path.Combine(dir, $"{d}.npz"));
            }
            Table(quantities, rows, batch, inputs, hidden, steps, source == "file" ? dir : null);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
        return 0;
    }

    /// <summary>The bench's rows: d synthetic Gaussian rows of p inputs and one target (seed 20).</summary>
    private static Dataset Rows(int d, int inputs) => SyntheticData.Gaussian(d, inputs, 1, seed: 20, limits: new RunLimits(long.MaxValue));

    private static void Table(string[] quantities, int[] rows, int batch, int inputs, int hidden, int steps, string? files)
    {
        foreach (var quantity in quantities)
        {
            foreach (int d in rows)
            {
                foreach (int b in files is null ? new[] { batch, d } : [batch])
                {
                    string from = files is null ? "memory" : Path.Combine(files, $"{d}.npz");
                    var (computation, process) = Child(quantity, d, b, inputs, hidden, steps, from);
                    Console.WriteLine(FormattableString.Invariant(
                        $"| {quantity} | {d:N0} | {(b == d ? "all" : b.ToString("N0", CultureInfo.InvariantCulture))} | {computation / 1e9:0.000} GB | {process / 1e9:0.000} GB | {8.0 * d * (inputs + 1) / 1e9:0.000} GB |"));
                }
            }
        }
    }

    /// <summary>The child: <c>memory-run QUANTITY ROWS BATCH INPUTS HIDDEN STEPS memory|FILE.npz</c>; prints <c>RESULT computation-peak process-peak</c>.</summary>
    public static int RunOne(string[] args)
    {
        string quantity = args[0];
        int d = int.Parse(args[1], CultureInfo.InvariantCulture), b = int.Parse(args[2], CultureInfo.InvariantCulture);
        int inputs = int.Parse(args[3], CultureInfo.InvariantCulture), hidden = int.Parse(args[4], CultureInfo.InvariantCulture);
        int steps = int.Parse(args[5], CultureInfo.InvariantCulture);
        TorchRuntime.EnsureInitialized();
        IDataSource data = args[6] == "memory" ? Rows(d, inputs) : ArrayFileSource.OpenNpz(args[6]);
        using var file = data as IDisposable;
        var mlp = new Mlp(inputs, [new HiddenLayer(hidden, ActivationRegistry.Default)], 1);
        using var model = new NetworkModel(mlp, mlp.InitialParameters(1));
        using var map = new ResidualMap(model, data, batchSize: b);
        GC.Collect();
        ScaleBench.ResetPeak();
        long loaded = BenchRunner.Status("VmRSS:");
        using (var scope = TorchSharp.torch.NewDisposeScope())
        {
            switch (quantity)
            {
                case "evaluate":
                    _ = map.Loss();
                    _ = map.Residuals().abs().max().item<double>();
                    _ = map.Gradient().norm().item<double>();
                    break;
                case "lanczos":
                    Lanczos.Eigenpairs(new HessianOperator(map), new LanczosOptions(K: 5, Which: SpectrumEnd.Largest, MaxIterations: steps, Tolerance: 1e-30)).Eigenvectors.Dispose();
                    break;
                default:
                    _ = TraceEstimate.Compute(new HessianOperator(map), TraceMethod.Hutchinson, new Curvature.TraceOptions(MaxProbes: 10, MinProbes: 10, BlockSize: 1));
                    break;
            }
        }
        long peak = BenchRunner.Status("VmHWM:");
        Console.WriteLine(FormattableString.Invariant($"RESULT {peak - loaded} {peak}"));
        return 0;
    }

    private static (double Computation, double Process) Child(string quantity, int rows, int batch, int inputs, int hidden, int steps, string from)
    {
        var fields = BenchRunner.Child($"{quantity} on {rows} rows", "memory-run", quantity, rows.ToString(CultureInfo.InvariantCulture),
            batch.ToString(CultureInfo.InvariantCulture), inputs.ToString(CultureInfo.InvariantCulture), hidden.ToString(CultureInfo.InvariantCulture),
            steps.ToString(CultureInfo.InvariantCulture), from);
        return (double.Parse(fields[0], CultureInfo.InvariantCulture), double.Parse(fields[1], CultureInfo.InvariantCulture));
    }
}
