using LossLandscape.Operators;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using LossLandscape.Curvature;
using LossLandscape.Data;
using LossLandscape.Engine;
using LossLandscape.Geometry;
using LossLandscape.Models;
using LossLandscape.Models.Activations;
using static LossLandscape.Bench.BenchArgs;
using static TorchSharp.torch;

namespace LossLandscape.Bench;

/// <summary>
/// Issue 4's curvature benchmark, side by side in one run on digits (d = 1797, p = 64, one-hot ℓ = 10), an MLP
/// 64-128-128-10 (tanh by default), full batch, float64:
/// (a) one Hessian-vector product over one gradient (goal ≤ 3);
/// (b) the top 20 eigenvalues (largest |λ|, what power iteration converges to) to a relative residual
/// ‖Hv − λv‖ ≤ 1e−6·|λ₁| by Lanczos against PyHessian's deflated power iteration, counting products and time
/// (goal ≥ 5× fewer products);
/// (c) the same Lanczos in PyTorch (<c>bench/pytorch/top20_lanczos.py</c>, same model file, same data, same start
/// vector), run through <c>python3</c> when it can import torch (goal: .NET within 1.2× of PyTorch).
/// Options: <c>--hidden 128,128</c>, <c>--activation tanh</c>, <c>--k 20</c>, <c>--tolerance 1e-6</c>,
/// <c>--power-max-iterations 1000</c> (per pair), <c>--repeats 5</c>, <c>--python PATH</c>, <c>--script PATH</c>,
/// <c>--skip-power</c>, <c>--threads T</c> (TorchSharp's and PyTorch's intra-op threads; default TorchSharp's own count), <c>--out DIR</c> (where the model and start vector are written).
/// Every time, the PyTorch ones included (the script repeats them itself), is the median of <c>--repeats</c> runs (at least
/// 5) after a warm-up run, with min and max; ratios are ratios of medians. Power iteration repeats too: at
/// <c>--power-max-iterations 100</c> one run is about 2000 products (27 s on 2 cores), so the row takes 6 runs of that.
/// </summary>
public static class HessianBench
{
    /// <summary>Runs the benchmark.</summary>
    public static int Run(string[] args)
    {
        TorchRuntime.EnsureInitialized();
        var hidden = Text(args, "--hidden", "128,128").Split(',').Select(w => int.Parse(w, CultureInfo.InvariantCulture)).ToArray();
        string activationName = Text(args, "--activation", "tanh");
        if (!ActivationRegistry.TryGet(activationName, out var found) || found is null)
        {
            Console.Error.WriteLine($"--activation: '{activationName}' is not one of {string.Join(", ", ActivationRegistry.Names)}");
            return 2;
        }
        var activation = found;
        int k = Int(args, "--k", 20);
        double tolerance = double.Parse(Text(args, "--tolerance", "1e-6"), CultureInfo.InvariantCulture);
        int powerMax = Int(args, "--power-max-iterations", 1000);
        int repeats = BenchRunner.Repeats(args);
        string outDir = Text(args, "--out", Path.Combine(Path.GetTempPath(), "landscape-hessian-bench"));
        Directory.CreateDirectory(outDir);

        var data = DatasetLoader.Load("builtin:digits", TargetSpec.Classes("digit"));
        var mlp = new Mlp(data.InputDim, hidden.Select(w => new HiddenLayer(w, activation)).ToArray(), data.OutputDim).WithScaling(InputScaling.Standardize(data));
        var parameters = mlp.InitialParameters(seed: 1);
        string modelPath = Path.Combine(outDir, "model.json");
        ModelFile.Save(modelPath, new NetworkPoint(mlp, parameters));
        using var model = new NetworkModel(mlp, parameters);
        var map = new ResidualMap(model, data);
        var hessian = new HessianOperator(map);
        // The same products with the gradient's graph rebuilt for each (ResidualMap.GradientGraphReuse off): the library's way before issue 21.
        using var rebuildingModel = new NetworkModel(mlp, parameters);
        var rebuildingMap = new ResidualMap(rebuildingModel, data) { GradientGraphReuse = false };
        var rebuilding = new HessianOperator(rebuildingMap);
        using var startPoint = tensor(parameters, dtype: float64);
        long n = mlp.ParameterCount;
        // The start vector of Lanczos(Seed: 0): the first Gaussian draw of Random(0), written for the PyTorch script.
        string startPath = Path.Combine(outDir, "start.json");
        File.WriteAllText(startPath, JsonSerializer.Serialize(SeededNormal.Vector(new Random(0), (int)n)));
        int requestedThreads = Int(args, "--threads", 0);
        if (requestedThreads > 0)
        {
            set_num_threads(requestedThreads);
        }
        int threads = get_num_threads();
        Console.WriteLine($"load (/proc/loadavg) at start: {BenchRunner.LoadAverage()} on {Environment.ProcessorCount} cores");
        Console.WriteLine($"digits d = {data.Count}, p = {data.InputDim}, ℓ = {data.OutputDim}, MLP {data.InputDim}-{string.Join("-", hidden)}-{data.OutputDim} ({activation.Name}), n = {n}, full batch, float64, torch threads {threads}");
        Console.WriteLine($"model: {modelPath}");

        // (a) one HVP over one gradient.
        using var v = tensor(SeededNormal.Vector(new Random(7), (int)n), dtype: float64);
        var grad = BenchRunner.Time(repeats, () =>
        {
            using var scope = NewDisposeScope();
            map.Gradient();
        });
        var hvp = BenchRunner.Time(repeats, () =>
        {
            using var scope = NewDisposeScope();
            hessian.Apply(v);
        });
        var hvpRebuilt = BenchRunner.Time(repeats, () =>
        {
            using var scope = NewDisposeScope();
            rebuilding.Apply(v);
        });

        // (b) top-k by Lanczos (residuals verified explicitly: k more products, counted) and by deflated power iteration.
        // Each run starts from the same vector (Seed 0), so every run takes the same steps; the row reports the last.
        // Each run sets the point first, which drops the kept graph: every run builds its one graph, as each PyTorch run does.
        var lanczosSeconds = BenchRunner.Time(repeats, () =>
        {
            map.SetPoint(startPoint);
            var r = Lanczos.Eigenpairs(hessian, new LanczosOptions(k, SpectrumEnd.LargestMagnitude, Tolerance: tolerance, VerifyResiduals: true));
            r.Eigenvectors.Dispose();
            return r;
        }, out var lanczos);
        var lanczosRebuiltSeconds = BenchRunner.Time(repeats, () =>
        {
            var r = Lanczos.Eigenpairs(rebuilding, new LanczosOptions(k, SpectrumEnd.LargestMagnitude, Tolerance: tolerance, VerifyResiduals: true));
            r.Eigenvectors.Dispose();
            return r;
        }, out var lanczosRebuilt);
        double scale = Math.Abs(lanczos.Eigenvalues[0]);
        double lanczosWorst = lanczos.ResidualNorms.Max() / scale;

        PowerIterationResult? power = null;
        Timing? powerSeconds = null;
        if (!args.Contains("--skip-power"))
        {
            powerSeconds = BenchRunner.Time(repeats, () =>
            {
                var r = PowerIteration.Eigenpairs(hessian, new PowerIterationOptions(k, powerMax, tolerance, PowerStoppingRule.Residual));
                r.Eigenvectors.Dispose();
                return r;
            }, out var last);
            power = last;
        }

        // (c) the PyTorch reference.
        var torchRun = RunScript(Python(Text(args, "--python", "")), Text(args, "--script", FindScript()), modelPath, startPath, k, tolerance, threads, repeats, out string torchNote);

        string R(double x) => x.ToString("0.00", CultureInfo.InvariantCulture);
        string E(double x) => x.ToString("0.0e+0", CultureInfo.InvariantCulture);
        Console.WriteLine();
        Console.WriteLine($"| measurement | products | time, median (min–max) of {repeats} after a warm-up | ratio of medians |");
        Console.WriteLine("|---|---|---|---|");
        Console.WriteLine($"| (a) one gradient ∇L (forward + backward), the baseline | | {BenchRunner.S(grad)} | 1 |");
        Console.WriteLine($"| (a) one Hessian-vector product through the kept gradient graph (one double backward; the library's default) | 1 | {BenchRunner.S(hvp)} | **{R(hvp.Median / grad.Median)}** × gradient (goal ≤ 3) |");
        Console.WriteLine($"| (a) one Hessian-vector product rebuilding the graph (forward, backward with graph, double backward) | 1 | {BenchRunner.S(hvpRebuilt)} | {R(hvpRebuilt.Median / grad.Median)} × gradient |");
        Console.WriteLine($"| (b) Lanczos, top {k} by \\|λ\\|, full re-orthogonalisation ({lanczos.Iterations} steps + {k} to verify; {lanczos.Status}; worst ‖Hv − λv‖/\\|λ₁\\| {E(lanczosWorst)}) | {lanczos.Applications} | {BenchRunner.S(lanczosSeconds)} | 1 |");
        double rebuiltDiff = lanczosRebuilt.Eigenvalues.Zip(lanczos.Eigenvalues).Max(p => Math.Abs(p.First - p.Second)) / scale;
        Console.WriteLine($"| (b) the same Lanczos rebuilding the graph at each product (max \\|Δλ\\|/\\|λ₁\\| vs kept graph {E(rebuiltDiff)}) | {lanczosRebuilt.Applications} | {BenchRunner.S(lanczosRebuiltSeconds)} | kept/rebuilt {R(lanczosSeconds.Median / lanczosRebuiltSeconds.Median)} |");
        if (power is not null && powerSeconds is not null)
        {
            int converged = power.ResidualNorms.Count(r => r <= tolerance * scale);
            double worst = power.ResidualNorms.Max() / scale;
            double maxDiff = power.Eigenvalues.Zip(lanczos.Eigenvalues).Max(p => Math.Abs(p.First - p.Second)) / scale;
            string bound = power.Status == SolverStatus.Converged ? "" : "≥ ";
            Console.WriteLine($"| (b) deflated power iteration (PyHessian's algorithm, stopped on the same residual rule; {converged}/{k} pairs converged within {powerMax} iterations each; worst residual {E(worst)}; max \\|Δλ\\|/\\|λ₁\\| vs Lanczos {E(maxDiff)}) | {power.Applications} | {BenchRunner.S(powerSeconds)} | **{bound}{R((double)power.Applications / lanczos.Applications)}×** the products of Lanczos (goal ≥ 5), {R(powerSeconds.Median / lanczosSeconds.Median)}× its time |");
        }
        if (torchRun is { } t)
        {
            double maxDiff = t.Eigenvalues.Zip(lanczos.Eigenvalues).Max(p => Math.Abs(p.First - p.Second)) / scale;
            Console.WriteLine($"| (c) PyTorch {t.Version} reference, same Lanczos, HVP rebuilding the graph each product ({t.Steps} steps; max \\|Δλ\\|/\\|λ₁\\| vs .NET {E(maxDiff)}; {t.Threads} threads) | {t.Products} | {BenchRunner.S(t.Seconds)} | .NET rebuilding/PyTorch rebuilding **{R(lanczosRebuiltSeconds.Median / t.Seconds.Median)}** (goal ≤ 1.2) |");
            if (t.ReuseSeconds is { } reuse)
            {
                Console.WriteLine($"| (c) PyTorch, HVP reusing one gradient graph (PyHessian's way; each run builds its graph once) | {t.ReuseProducts} | {BenchRunner.S(reuse)} | .NET kept graph/PyTorch reusing **{R(lanczosSeconds.Median / reuse.Median)}** (goal ≤ 0.5); .NET rebuilding/PyTorch reusing {R(lanczosRebuiltSeconds.Median / reuse.Median)} |");
            }
            Console.WriteLine($"| (c) PyTorch one gradient / one HVP | | {BenchRunner.S(t.GradientSeconds)} / {BenchRunner.S(t.HvpSeconds)} | HVP/gradient {R(t.HvpSeconds.Median / t.GradientSeconds.Median)} |");
        }
        else
        {
            Console.WriteLine($"| (c) PyTorch reference | | | {torchNote} |");
        }
        Console.WriteLine();
        Console.WriteLine($"load (/proc/loadavg) at end: {BenchRunner.LoadAverage()} on {Environment.ProcessorCount} cores");
        Console.WriteLine($"top {k} by |λ| (Lanczos): {string.Join(", ", lanczos.Eigenvalues.Select(x => x.ToString("G6", CultureInfo.InvariantCulture)))}");
        return 0;
    }

    private sealed record PyTorchRun(string Version, int Threads, Timing Seconds, long Products, int Steps, Timing? ReuseSeconds, long ReuseProducts,
        Timing GradientSeconds, Timing HvpSeconds, double[] Eigenvalues);

    private static PyTorchRun? RunScript(string? python, string script, string model, string start, int k, double tolerance, int threads, int repeats, out string note)
    {
        string? line = ReferenceJson(python, script, "python3-torch python3-numpy libopenblas0-pthread", [script, "--model", model, "--data", FindDigits(), "--start", start, "--k", k.ToString(CultureInfo.InvariantCulture),
            "--tolerance", tolerance.ToString("R", CultureInfo.InvariantCulture), "--threads", threads.ToString(CultureInfo.InvariantCulture),
            "--repeats", repeats.ToString(CultureInfo.InvariantCulture)], out note);
        if (line is null)
        {
            return null;
        }
        using var doc = JsonDocument.Parse(line);
        var r = doc.RootElement;
        return new PyTorchRun(r.GetProperty("torch").GetString()!, r.GetProperty("threads").GetInt32(), Times(r.GetProperty("seconds")),
            r.GetProperty("hvps").GetInt64(), r.GetProperty("steps").GetInt32(),
            r.TryGetProperty("reuse_seconds", out var rs) ? Times(rs) : null, r.TryGetProperty("reuse_hvps", out var rh) ? rh.GetInt64() : 0,
            Times(r.GetProperty("gradient_seconds")), Times(r.GetProperty("hvp_seconds")),
            r.GetProperty("eigenvalues").EnumerateArray().Select(e => e.GetDouble()).ToArray());
    }

    /// <summary>The script's timing object <c>{"median", "min", "max", "repeats"}</c> (its warm-up run left out).</summary>
    private static Timing Times(JsonElement e) =>
        new(e.GetProperty("median").GetDouble(), e.GetProperty("min").GetDouble(), e.GetProperty("max").GetDouble(), e.GetProperty("repeats").GetInt32());

    /// <summary>The first of <paramref name="explicitPath"/>, <c>python3</c>, <c>/usr/bin/python3</c> that can import torch.</summary>
    /// <summary>
    /// Runs a reference script (<paramref name="python"/> with <paramref name="arguments"/>, the script first) and returns the
    /// last line of its standard output that is a JSON object, with an empty <paramref name="note"/>; or null, with the note
    /// saying why: no <paramref name="python"/> that imports torch (naming the Debian <paramref name="packages"/>), no
    /// <paramref name="script"/>, its exit code and last line of standard error, or no JSON line.
    /// </summary>
    internal static string? ReferenceJson(string? python, string script, string packages, IEnumerable<string> arguments, out string note)
    {
        if (python is null)
        {
            note = $"skipped: no python3 that can import torch (apt-get install {packages})";
            return null;
        }
        if (!File.Exists(script))
        {
            note = $"skipped: {script} not found (pass --script)";
            return null;
        }

        var info = new ProcessStartInfo(python)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in arguments)
        {
            info.ArgumentList.Add(a);
        }
        using var process = Process.Start(info)!;
        var stderr = process.StandardError.ReadToEndAsync();
        string stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            note = $"failed (exit {process.ExitCode}): {stderr.Result.Trim().Split('\n').LastOrDefault()}";
            return null;
        }
        string? line = stdout.Split('\n').LastOrDefault(l => l.TrimStart().StartsWith('{'));
        note = line is null ? "failed: no JSON line on stdout" : "";
        return line;
    }

    internal static string? Python(string explicitPath)
    {
        var candidates = explicitPath.Length > 0 ? [explicitPath] : new[] { "python3", "/usr/bin/python3" };
        foreach (var candidate in candidates)
        {
            try
            {
                var info = new ProcessStartInfo(candidate) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
                info.ArgumentList.Add("-c");
                info.ArgumentList.Add("import torch, numpy");
                using var process = Process.Start(info)!;
                process.StandardOutput.ReadToEnd();
                process.StandardError.ReadToEnd();
                process.WaitForExit();
                if (process.ExitCode == 0)
                {
                    return candidate;
                }
            }
            catch (System.ComponentModel.Win32Exception)
            {
                // not installed: try the next one.
            }
        }
        return null;
    }

    private static string FindScript() => FindUp(Path.Combine("bench", "pytorch", "top20_lanczos.py")) ?? "bench/pytorch/top20_lanczos.py";

    private static string FindDigits() => FindUp(Path.Combine("src", "LossLandscape", "Data", "Embedded", "digits.csv")) ?? "src/LossLandscape/Data/Embedded/digits.csv";

    /// <summary>The path <paramref name="relative"/> under the working directory or one of its parents, or under the binary's.</summary>
    internal static string? FindUp(string relative)
    {
        foreach (var root in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            for (var dir = new DirectoryInfo(root); dir is not null; dir = dir.Parent)
            {
                var path = Path.Combine(dir.FullName, relative);
                if (File.Exists(path))
                {
                    return path;
                }
            }
        }
        return null;
    }
}
