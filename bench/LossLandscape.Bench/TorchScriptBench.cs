using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using LossLandscape.Curvature;
using LossLandscape.Data;
using LossLandscape.Engine;
using LossLandscape.Geometry;
using LossLandscape.Models;
using LossLandscape.Operators;
using static LossLandscape.Bench.BenchArgs;
using static TorchSharp.torch;

namespace LossLandscape.Bench;

/// <summary>
/// Issue 21 §4: a TorchScript CNN saved by PyTorch, read by the library, against PyTorch itself on the same module and the
/// same rows, side by side in one run. The module (default the test fixture <c>fashion_a.pt</c>: conv(1,6,5)-relu-maxpool2-
/// conv(6,12,5)-relu-maxpool2-flatten-linear(192,10), n = 3898) on the first <c>--rows</c> Fashion-MNIST training images
/// (<c>builtin:fashion-mnist</c>, pixels/255 in float64), under the mean cross-entropy, all in float64:
/// the loss, the gradient and one Hessian-vector product with the same v (goal: equal to 1e−10 relative); the top
/// eigenvalue by the library's Lanczos converged to ‖Hv − λv‖ ≤ 1e−6·|λ| against PyTorch's power iteration run to
/// tolerance 1e−10 (goal 1e−6 relative), and against PyHessian's default run (tol 1e−3, 100 iterations); the trace by
/// Hutch++ against PyHessian's Hutchinson, each with its standard error; the time of one HVP against PyTorch rebuilding
/// the gradient graph per product and reusing one graph, as PyHessian does (goal: .NET/PyTorch ≤ 1); the products of
/// Lanczos to 1e−6 against those of PyHessian's power iteration to its 1e−3 (goal: ≥ 5× as many for power iteration), and
/// against power iteration held to the same residual test ‖Hv − λv‖ ≤ 1e−6·|λ|.
/// PyTorch's numbers come from <c>bench/pytorch/torchscript_reference.py</c>, run by <c>--python</c> (default the first
/// python3 that imports torch) with torch.set_num_threads set to TorchSharp's thread count.
/// Options: <c>--model FILE.pt</c>, <c>--rows 1000</c>, <c>--repeats 5</c>, <c>--python PATH</c>, <c>--script PATH</c>,
/// <c>--batch-size B</c> (default the library's, as the CLI takes it), <c>--threads T</c> (TorchSharp's and PyTorch's intra-op
/// threads; default TorchSharp's own count), <c>--out DIR</c> (where v and PyTorch's JSON are written).
/// On a machine whose other load leaves fewer free cores than threads, OpenMP's spin-waiting makes a product of either side
/// up to tens of times slower and erratic (seen on 2 cores at load 4: one HVP 0.1 s with 1 thread, 5–7 s with 2); the load
/// average is printed at the start and the end, and <c>--threads 1</c> is the setting that measures the code there.
/// glibc's allocator matters as much: with its default (dynamic) mmap threshold, the tensors of 1000 rows (tens of MB) are
/// mapped and unmapped at every operation and each product spends about half its time in page faults, PyTorch 1.13's far
/// more than TorchSharp's; the bench prints <c>MALLOC_MMAP_THRESHOLD_</c> and <c>MALLOC_TRIM_THRESHOLD_</c>, which the
/// script inherits, so that a run with both raised (<c>env MALLOC_MMAP_THRESHOLD_=1000000000 MALLOC_TRIM_THRESHOLD_=1000000000</c>)
/// compares the two on equal terms.
/// Every time is the median of <c>--repeats</c> runs (at least 5) after a warm-up run, with min and max, PyTorch's included
/// (the script repeats them itself); ratios are ratios of medians.
/// </summary>
public static class TorchScriptBench
{
    /// <summary>Goal for the loss, the gradient and the HVP: agreement with PyTorch to this relative difference (issue 21 §4).</summary>
    private const double ValueGoal = 1e-10;

    /// <summary>The Lanczos tolerance ‖Hv − λv‖ ≤ tol·|λ|, and the goal for the top eigenvalue against PyTorch's converged one (issue 21 §4).</summary>
    private const double EigenvalueGoal = 1e-6;

    /// <summary>Goal: PyHessian's power iteration to its tol 1e−3 needs at least this many times the products of Lanczos to 1e−6 (issue 21 §4).</summary>
    private const double ProductGoal = 5;

    /// <summary>Seed of v for the HVP (the same as the hessian bench's).</summary>
    private const int VectorSeed = 7;

    /// <summary>Runs the benchmark.</summary>
    public static int Run(string[] args)
    {
        TorchRuntime.EnsureInitialized();
        string modelPath = Text(args, "--model", HessianBench.FindUp(Path.Combine("tests", "LossLandscape.Tests", "Fixtures", "torchscript", "fashion_a.pt"))
            ?? "tests/LossLandscape.Tests/Fixtures/torchscript/fashion_a.pt");
        int rows = Int(args, "--rows", 1000);
        int repeats = BenchRunner.Repeats(args);
        string outDir = Text(args, "--out", Path.Combine(Path.GetTempPath(), "landscape-torchscript-bench"));
        Directory.CreateDirectory(outDir);
        if (!Directory.Exists(DatasetLoader.FashionMnistDirectory))
        {
            Console.Error.WriteLine($"builtin:fashion-mnist is not installed ({DatasetLoader.FashionMnistDirectory}): apt-get install dataset-fashion-mnist");
            return 1;
        }
        if (!File.Exists(modelPath))
        {
            Console.Error.WriteLine($"--model: {modelPath} not found");
            return 2;
        }

        var data = Landscape.OpenData("builtin:fashion-mnist", string.Create(CultureInfo.InvariantCulture, $"0:{rows}"));
        using var owner = data as IDisposable;
        var point = ModelFile.Load(modelPath, data.InputShape);
        using var model = point.ToModel();
        var loss = LossFunction.Parse("cross-entropy");
        int batch = Int(args, "--batch-size", ResidualMap.DefaultBatchSize(model, data.Count));
        using var map = new ResidualMap(model, data, loss, batch);
        var hessian = new HessianOperator(map);
        int n = map.ParameterCount;
        int requestedThreads = Int(args, "--threads", 0);
        if (requestedThreads > 0)
        {
            set_num_threads(requestedThreads);
        }
        int threads = get_num_threads();
        string describe = point.Network is TorchScriptNetwork script ? script.Describe() : point.Network.GetType().Name;
        Console.WriteLine($"load (/proc/loadavg) at start: {BenchRunner.LoadAverage()} on {Environment.ProcessorCount} cores");
        Console.WriteLine($"model: {modelPath} ({describe}), n = {n}, float64, eval mode");
        Console.WriteLine($"data: builtin:fashion-mnist rows 0:{rows} (pixels/255, float64), cross-entropy (mean), batch {batch} rows, read from the files per batch as the CLI does");
        Console.WriteLine($"threads: TorchSharp {threads} (interop {get_num_interop_threads()})");
        Console.WriteLine($"glibc malloc (inherited by PyTorch): MALLOC_MMAP_THRESHOLD_={Environment.GetEnvironmentVariable("MALLOC_MMAP_THRESHOLD_") ?? "(default)"}, MALLOC_TRIM_THRESHOLD_={Environment.GetEnvironmentVariable("MALLOC_TRIM_THRESHOLD_") ?? "(default)"}");

        // The vector of the HVP, written for the script as n little-endian float64 values.
        var vValues = SeededNormal.Vector(new Random(VectorSeed), n);
        string vectorPath = Path.Combine(outDir, "v.f64");
        File.WriteAllBytes(vectorPath, MemoryMarshal.AsBytes(vValues.AsSpan()).ToArray());
        using var v = tensor(vValues, dtype: float64);

        // The values.
        double ourLoss = map.Loss();
        double[] ourGradient;
        double[] ourHvp;
        using (var scope = NewDisposeScope())
        {
            ourGradient = map.Gradient().data<double>().ToArray();
            ourHvp = hessian.Apply(v).data<double>().ToArray();
        }
        var spectrum = HessianSpectrum.Compute(map, new SpectrumOptions(SpectrumMethod.Lanczos, CurvatureKind.Hessian, K: 1, Which: SpectrumEnd.LargestMagnitude, Tolerance: EigenvalueGoal));
        double lambda = spectrum.Eigenvalues[0];
        double lambdaResidual = spectrum.Residuals![0] / Math.Abs(lambda);
        var trace = TraceEstimate.Compute(hessian, TraceMethod.HutchPlusPlus);

        // The times: one gradient, one HVP as the CLI runs it (rows read per batch), one HVP with the rows in memory.
        var gradientTime = BenchRunner.Time(repeats, () =>
        {
            using var scope = NewDisposeScope();
            map.Gradient();
        });
        var hvpTime = BenchRunner.Time(repeats, () =>
        {
            using var scope = NewDisposeScope();
            hessian.Apply(v);
        });
        // The same product with the graph rebuilt at each call (GradientGraphReuse off), against PyTorch rebuilding.
        var rebuiltMap = new ResidualMap(model, data, loss, batch) { GradientGraphReuse = false };
        var rebuiltHessian = new HessianOperator(rebuiltMap);
        var rebuiltTime = BenchRunner.Time(repeats, () =>
        {
            using var scope = NewDisposeScope();
            rebuiltHessian.Apply(v);
        });
        Timing residentTime;
        var resident = data.Load();
        using (var residentMap = new ResidualMap(model, resident, loss, batch))
        {
            var residentHessian = new HessianOperator(residentMap);
            residentTime = BenchRunner.Time(repeats, () =>
            {
                using var scope = NewDisposeScope();
                residentHessian.Apply(v);
            });
        }

        // PyTorch.
        string scriptPath = Text(args, "--script", HessianBench.FindUp(Path.Combine("bench", "pytorch", "torchscript_reference.py")) ?? "bench/pytorch/torchscript_reference.py");
        var torchRun = RunScript(HessianBench.Python(Text(args, "--python", "")), scriptPath, modelPath, vectorPath, rows, threads, repeats, Path.Combine(outDir, "pytorch.json"),
            out string torchNote);
        Console.WriteLine($"load (/proc/loadavg) at end: {BenchRunner.LoadAverage()} on {Environment.ProcessorCount} cores");

        Console.WriteLine();
        Print(torchRun, torchNote, rows, repeats, ourLoss, ourGradient, ourHvp, spectrum, lambda, lambdaResidual, trace, gradientTime, hvpTime, rebuiltTime, residentTime);
        return 0;
    }

    private static void Print(PyTorchReference? t, string torchNote, int rows, int repeats, double ourLoss, double[] ourGradient, double[] ourHvp,
        SpectrumResult spectrum, double lambda, double lambdaResidual, TraceResult trace, Timing gradientTime, Timing hvpTime, Timing rebuiltTime, Timing residentTime)
    {
        string E(double x) => x.ToString("0.0e+0", CultureInfo.InvariantCulture);
        string G(double x) => x.ToString("R", CultureInfo.InvariantCulture);
        string G8(double x) => x.ToString("G8", CultureInfo.InvariantCulture);
        string R(double x) => x.ToString("0.00", CultureInfo.InvariantCulture);
        string Goal(bool met) => met ? "met" : "**MISSED**";
        string torch = t is null ? "PyTorch" : $"PyTorch {t.Version}";
        Console.WriteLine($"| quantity ({rows} rows, float64) | .NET (LossLandscape) | {torch} | relative difference / ratio | goal |");
        Console.WriteLine("|---|---|---|---|---|");
        if (t is null)
        {
            Console.WriteLine($"| cross-entropy L | {G(ourLoss)} | {torchNote} | | |");
            Console.WriteLine($"| ‖∇L‖ | {G(Norm(ourGradient))} | | | |");
            Console.WriteLine($"| ‖∇²L v‖ | {G(Norm(ourHvp))} | | | |");
            Console.WriteLine($"| top eigenvalue (Lanczos to ‖Hv − λv‖ ≤ 1e-6·\\|λ\\|; {spectrum.Products} products, {spectrum.Status}) | {G(lambda)} | | | |");
            Console.WriteLine($"| trace (Hutch++, {trace.Applications} products) | {G8(trace.Trace)} ± {G8(trace.StandardError)} | | | |");
            Console.WriteLine($"| one HVP (as the CLI runs it: kept graph) / graph rebuilt / rows in memory / one gradient | {BenchRunner.S(hvpTime)} / {BenchRunner.S(rebuiltTime)} / {BenchRunner.S(residentTime)} / {BenchRunner.S(gradientTime)} | | | |");
            return;
        }
        double lossDiff = Math.Abs(ourLoss - t.Loss) / Math.Abs(t.Loss);
        double gradDiff = Distance(ourGradient, t.Gradient) / Norm(t.Gradient);
        double hvpDiff = Distance(ourHvp, t.Hvp) / Norm(t.Hvp);
        Console.WriteLine($"| cross-entropy L (mean over rows) | {G(ourLoss)} | {G(t.Loss)} | {E(lossDiff)} | ≤ 1e-10: {Goal(lossDiff <= ValueGoal)} |");
        Console.WriteLine($"| gradient ∇L (‖·‖ shown; difference ‖Δ‖/‖∇L‖) | {G(Norm(ourGradient))} | {G(Norm(t.Gradient))} | {E(gradDiff)} | ≤ 1e-10: {Goal(gradDiff <= ValueGoal)} |");
        Console.WriteLine($"| HVP ∇²L v, v ~ N(0, I) seed {VectorSeed} (‖·‖ shown; ‖Δ‖/‖∇²L v‖; PyTorch by double backward, graph rebuilt) | {G(Norm(ourHvp))} | {G(Norm(t.Hvp))} | {E(hvpDiff)} | ≤ 1e-10: {Goal(hvpDiff <= ValueGoal)} |");

        var tight = t.Tight;
        double eigDiff = Math.Abs(lambda - tight.Rayleigh) / Math.Abs(tight.Rayleigh);
        string residualStop = tight.ResidualHvps is { } rh ? $"‖Hv − ρv‖ ≤ 1e-6·\\|ρ\\| after {rh}" : "‖Hv − ρv‖ ≤ 1e-6·\\|ρ\\| NOT reached";
        string ruleStop = tight.Converged ? $"PyHessian's rule at tol {E(tight.Tolerance)} held after {tight.Hvps} products" : $"PyHessian's rule at tol {E(tight.Tolerance)} NOT reached";
        Console.WriteLine($"| top eigenvalue: .NET Lanczos (largest \\|λ\\|, {spectrum.Iterations} steps + 1 to verify, {spectrum.Status}, ‖Hv − λv‖/\\|λ\\| = {E(lambdaResidual)}) vs PyTorch power iteration run to convergence ({ruleStop}, {residualStop}; ρ = vᵀHv/vᵀv of its last product, ‖Hv − ρv‖/\\|ρ\\| = {E(tight.Residual / Math.Abs(tight.Rayleigh))}) | {G(lambda)} | {G(tight.Rayleigh)} | {E(eigDiff)} | ≤ 1e-6: {Goal(eigDiff <= EigenvalueGoal)} |");
        double pyhessianTightDiff = Math.Abs(tight.Eigenvalue - tight.Rayleigh) / Math.Abs(tight.Rayleigh);
        Console.WriteLine($"| top eigenvalue: PyHessian's own value where its rule at tol {E(tight.Tolerance)} stopped (vᵀHv of the product before, with ‖v‖ = 1/(1 + 1e-6)) vs that ρ | | {G(tight.Eigenvalue)} | {E(pyhessianTightDiff)} | (PyHessian's normalisation: low by ≈ 2e-6) |");
        double defaultDiff = Math.Abs(t.Power.Eigenvalue - lambda) / Math.Abs(lambda);
        Console.WriteLine($"| top eigenvalue: PyHessian's default run (tol 1e-3, at most 100 iterations; {t.Power.Hvps} products, {(t.Power.Converged ? "stopped by its rule" : "NOT converged")}) vs .NET Lanczos | {G(lambda)} | {G(t.Power.Eigenvalue)} | {E(defaultDiff)} | (the accuracy PyHessian reports) |");
        double combined = Math.Sqrt(trace.StandardError * trace.StandardError + t.Trace.StandardError * t.Trace.StandardError);
        double traceDiff = Math.Abs(trace.Trace - t.Trace.Trace);
        Console.WriteLine($"| trace: .NET Hutch++ ({trace.Applications} products, {trace.Status}) vs PyHessian's Hutchinson (tol 1e-3, at most 100 probes; {t.Trace.Hvps} products, {(t.Trace.Converged ? "stopped by its rule" : "NOT converged")}), each ± its standard error | {G8(trace.Trace)} ± {G8(trace.StandardError)} | {G8(t.Trace.Trace)} ± {G8(t.Trace.StandardError)} | {E(traceDiff / Math.Abs(trace.Trace))} ({R(traceDiff / combined)} combined standard errors) | |");

        Console.WriteLine($"| one HVP, both rebuilding the graph per product (.NET: GradientGraphReuse off, rows read per batch), median (min–max) of {repeats} | {BenchRunner.S(rebuiltTime)} | {BenchRunner.S(t.HvpRebuild)} | .NET/PyTorch **{R(rebuiltTime.Median / t.HvpRebuild.Median)}** | ≤ 1.0: {Goal(rebuiltTime.Median <= t.HvpRebuild.Median)} |");
        Console.WriteLine($"| one HVP, both through one kept gradient graph (.NET as the CLI runs it; PyHessian's way; the graph's forward and backward not counted) | {BenchRunner.S(hvpTime)} | {BenchRunner.S(t.HvpReuse)} | .NET/PyTorch **{R(hvpTime.Median / t.HvpReuse.Median)}** | ≤ 1.0: {Goal(hvpTime.Median <= t.HvpReuse.Median)} |");
        Console.WriteLine($"| one HVP, .NET with the rows in memory (kept graph), vs PyTorch rebuilding / reusing | {BenchRunner.S(residentTime)} | | {R(residentTime.Median / t.HvpRebuild.Median)} / {R(residentTime.Median / t.HvpReuse.Median)} | |");
        Console.WriteLine($"| one gradient ∇L | {BenchRunner.S(gradientTime)} | {BenchRunner.S(t.GradientTime)} | .NET/PyTorch {R(gradientTime.Median / t.GradientTime.Median)} | |");

        double productRatio = (double)t.Power.Hvps / spectrum.Products;
        Console.WriteLine($"| products: .NET Lanczos to ‖Hv − λv‖ ≤ 1e-6·\\|λ\\| vs PyHessian's power iteration to its tol 1e-3 (power/Lanczos) | {spectrum.Products} | {t.Power.Hvps} | **{R(productRatio)}** | ≥ {ProductGoal}: {Goal(productRatio >= ProductGoal)} |");
        string sameTest = tight.ResidualHvps is { } same ? same.ToString(CultureInfo.InvariantCulture) : $"> {tight.TotalHvps}";
        string sameRatio = tight.ResidualHvps is { } same2 ? R((double)same2 / spectrum.Products) : $"> {R((double)tight.TotalHvps / spectrum.Products)}";
        Console.WriteLine($"| products: .NET Lanczos vs power iteration, both to ‖Hv − λv‖ ≤ 1e-6·\\|λ\\| (power/Lanczos) | {spectrum.Products} | {sameTest} | {sameRatio} | |");
        // The first product whose Rayleigh quotient is within 1e-6·|λ| of Lanczos's λ (power iteration's quotient only rises
        // towards λ₁ once the start's other components have decayed, so the first hit is where it stays).
        int hit = t.Tight.History.ToList().FindIndex(rho => Math.Abs(rho - lambda) <= EigenvalueGoal * Math.Abs(lambda));
        string needed = hit >= 0 ? (hit + 1).ToString(CultureInfo.InvariantCulture) : $"> {t.Tight.History.Count}";
        string neededRatio = hit >= 0 ? R((double)(hit + 1) / spectrum.Products) : $"> {R((double)t.Tight.History.Count / spectrum.Products)}";
        Console.WriteLine($"| products: .NET Lanczos to 1e-6 vs power iteration until its ρ is within 1e-6·\\|λ\\| of Lanczos's λ (known only afterwards; power/Lanczos) | {spectrum.Products} | {needed} | {neededRatio} | |");
    }

    private static double Norm(double[] x) => Math.Sqrt(x.Sum(a => a * a));

    private static double Distance(double[] x, double[] y) => Math.Sqrt(x.Zip(y).Sum(p => (p.First - p.Second) * (p.First - p.Second)));

    /// <summary>One power-iteration run of the script: PyHessian's value, the Rayleigh quotient and residual of its last product, its products, and the Rayleigh quotient of every product.</summary>
    /// <param name="Eigenvalue">PyHessian's value when its rule stopped it (vᵀHv of the product before).</param>
    /// <param name="Hvps">Products when PyHessian's rule stopped it (all of them when it did not).</param>
    /// <param name="Converged">Whether PyHessian's rule stopped it within its iterations.</param>
    /// <param name="Tolerance">PyHessian's tol.</param>
    /// <param name="Rayleigh">ρ = vᵀHv/vᵀv of the run's last product.</param>
    /// <param name="Residual">‖Hv − ρv‖/‖v‖ of that product.</param>
    /// <param name="TotalHvps">Products of the whole run (past PyHessian's stop when the residual test was asked for).</param>
    /// <param name="ResidualHvps">Products when ‖Hv − ρv‖ ≤ 1e−6·|ρ| first held, or null (not asked for, or never).</param>
    /// <param name="History">ρ of every product.</param>
    private sealed record PowerRun(double Eigenvalue, long Hvps, bool Converged, double Tolerance, double Rayleigh, double Residual, long TotalHvps, long? ResidualHvps,
        IReadOnlyList<double> History);

    /// <summary>The script's Hutchinson trace: the mean of its samples, their standard error and the products.</summary>
    private sealed record HutchinsonRun(double Trace, double StandardError, long Hvps, bool Converged);

    private sealed record PyTorchReference(string Version, int Threads, int InteropThreads, double Loss, double[] Gradient, double[] Hvp,
        PowerRun Power, PowerRun Tight, HutchinsonRun Trace, Timing GradientTime, Timing HvpReuse, Timing HvpRebuild);

    private static PyTorchReference? RunScript(string? python, string script, string model, string vector, int rows, int threads, int repeats, string jsonPath, out string note)
    {
        string? line = HessianBench.ReferenceJson(python, script, "python3-torch python3-numpy", [script, "--model", model, "--vector", vector, "--data-dir", DatasetLoader.FashionMnistDirectory,
            "--rows", rows.ToString(CultureInfo.InvariantCulture), "--threads", threads.ToString(CultureInfo.InvariantCulture),
            "--repeats", repeats.ToString(CultureInfo.InvariantCulture), "--tight"], out note);
        if (line is null)
        {
            return null;
        }
        File.WriteAllText(jsonPath, line);
        using var doc = JsonDocument.Parse(line);
        var r = doc.RootElement;
        Console.WriteLine($"threads: PyTorch {r.GetProperty("threads").GetInt32()} (interop {r.GetProperty("interop_threads").GetInt32()}); its JSON: {jsonPath}");
        return new PyTorchReference(r.GetProperty("torch").GetString()!, r.GetProperty("threads").GetInt32(), r.GetProperty("interop_threads").GetInt32(),
            r.GetProperty("loss").GetDouble(), Numbers(r.GetProperty("gradient")), Numbers(r.GetProperty("hvp")),
            Power(r.GetProperty("power")), Power(r.GetProperty("power_tight")),
            new HutchinsonRun(r.GetProperty("trace").GetProperty("trace").GetDouble(), r.GetProperty("trace").GetProperty("standard_error").GetDouble(),
                r.GetProperty("trace").GetProperty("hvps").GetInt64(), r.GetProperty("trace").GetProperty("converged").GetBoolean()),
            Times(r.GetProperty("gradient_seconds")), Times(r.GetProperty("hvp_reuse_seconds")), Times(r.GetProperty("hvp_rebuild_seconds")));
    }

    private static double[] Numbers(JsonElement e) => e.EnumerateArray().Select(x => x.GetDouble()).ToArray();

    private static PowerRun Power(JsonElement e) => new(e.GetProperty("eigenvalue").GetDouble(), e.GetProperty("hvps").GetInt64(), e.GetProperty("converged").GetBoolean(),
        e.GetProperty("tolerance").GetDouble(), e.GetProperty("rayleigh").GetDouble(), e.GetProperty("residual").GetDouble(), e.GetProperty("total_hvps").GetInt64(),
        e.GetProperty("residual_hvps").ValueKind == JsonValueKind.Number ? e.GetProperty("residual_hvps").GetInt64() : null, Numbers(e.GetProperty("rayleigh_history")));

    /// <summary>The script's timing object <c>{"median", "min", "max", "repeats"}</c> (its warm-up run left out).</summary>
    private static Timing Times(JsonElement e) =>
        new(e.GetProperty("median").GetDouble(), e.GetProperty("min").GetDouble(), e.GetProperty("max").GetDouble(), e.GetProperty("repeats").GetInt32());
}
