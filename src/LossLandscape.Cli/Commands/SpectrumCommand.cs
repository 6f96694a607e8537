using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using LossLandscape.Curvature;
using LossLandscape.Data;
using LossLandscape.Geometry;
using Spectre.Console;
using static TorchSharp.torch;

namespace LossLandscape.Cli.Commands;

/// <summary>
/// <c>landscape spectrum --model M --data D (--target|--one-hot) --method dense|gram|lanczos|slq [--operator hessian|ggn]
/// --k K --which largest|smallest|magnitude [--tolerance T] [--seed S] [--batch-size B] [--json F]</c>:
/// eigenvalues of ∇²L (or of the Gauss-Newton matrix 2JᵀJ), exact or matrix-free, or the spectral density by stochastic
/// Lanczos quadrature; every output states the Hessian-vector products used and the wall time.
/// </summary>
internal static class SpectrumCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create(CliContext context)
    {
        var command = new Command("spectrum", "Eigenvalues of ∇²L: all of them (dense), on M from 2·eig(JJᵀ) (gram), k extreme ones by Lanczos, or the density by stochastic Lanczos quadrature (slq).");
        var model = CommonOptions.Model();
        command.Options.Add(model);
        var data = new CommonOptions.DataOptions(command);
        var method = new Option<string>("--method") { Description = "dense (all n eigenvalues) | gram (2·eig(JJᵀ), exact on M) | lanczos (k extreme eigenpairs) | slq (spectral density)", DefaultValueFactory = _ => "lanczos" };
        var curvature = CurvatureOptions.Operator();
        var k = new Option<int>("--k") { Description = "how many eigenvalues to report", DefaultValueFactory = _ => 10 };
        var which = new Option<string>("--which") { Description = "largest (descending) | smallest (ascending, negative curvature first) | magnitude (by |λ| descending)", DefaultValueFactory = _ => "largest" };
        var tolerance = new Option<double>("--tolerance") { Description = "Lanczos: a pair is converged when ‖Hv − λv‖ ≤ this·max|λ|", DefaultValueFactory = _ => 1e-6 };
        var maxIterations = new Option<int?>("--max-iterations") { Description = "Lanczos: the most steps (default min(n, max(100, 10k)))" };
        var seed = new Option<int>("--seed") { Description = "seed of the random start (Lanczos) or probe (slq) vectors", DefaultValueFactory = _ => 0 };
        var batchSize = CurvatureOptions.BatchSize();
        var budget = CurvatureOptions.Budget();
        var steps = new Option<int>("--steps") { Description = "slq: Lanczos steps per probe (default 90, Ghorbani et al. 2019)", DefaultValueFactory = _ => new SlqOptions().Steps };
        var probes = new Option<int>("--probes") { Description = "slq: probe vectors (default 10, Ghorbani et al. 2019)", DefaultValueFactory = _ => new SlqOptions().ProbeCount };
        var sigma2 = new Option<double>("--sigma2") { Description = "slq: Gaussian broadening σ² on the spectrum scaled to [−1, 1] (default 1e−5, Ghorbani et al. 2019)", DefaultValueFactory = _ => new SlqOptions().Sigma2 };
        var gridPoints = new Option<int>("--grid-points") { Description = "slq: points of the density grid (default 10 000, PyHessian)", DefaultValueFactory = _ => new SlqOptions().GridPoints };
        var json = CommonOptions.Json();
        foreach (var o in new Option[] { method, curvature, k, which, tolerance, maxIterations, seed, batchSize, budget, steps, probes, sigma2, gridPoints, json })
        {
            command.Options.Add(o);
        }
        command.SetAction(result =>
        {
            string methodName = result.GetValue(method)!;
            if (methodName is not ("dense" or "gram" or "lanczos" or "slq"))
            {
                throw new UsageException($"--method: '{methodName}' is not one of dense, gram, lanczos, slq");
            }
            var end = ParseWhich(result.GetValue(which)!);
            int count = result.GetValue(k);
            if (count < 1)
            {
                throw new UsageException($"--k: {count} is not a positive number of eigenvalues");
            }
            var kind = CurvatureOptions.ParseOperator(result.GetValue(curvature)!);
            long budgetBytes = CurvatureOptions.BudgetBytes(result.GetValue(budget));
            LandscapeApp.Initialize();
            var point = CommonOptions.LoadModel(result.GetValue(model)!);
            var set = data.Load(result);
            using var scope = NewDisposeScope();
            using var m = point.ToModel();
            var map = new ResidualMap(m, set, batchSize: result.GetValue(batchSize));
            var op = CurvatureOptions.Build(map, kind);
            var watch = Stopwatch.StartNew();
            var spectrum = CurvatureOptions.Guard(() => methodName switch
            {
                "dense" => context.WithProgress("dense spectrum", _ => Dense(op, kind, count, end, budgetBytes)),
                "gram" => context.WithProgress("gram spectrum", _ => Gram(map, count, end, budgetBytes)),
                "lanczos" => context.WithProgress("lanczos", _ => LanczosSpectrum(op, kind, new LanczosOptions(count, end, result.GetValue(maxIterations), result.GetValue(tolerance), result.GetValue(seed), VerifyResiduals: true, BudgetBytes: budgetBytes))),
                _ => context.WithProgress("slq", _ => Slq(op, kind, new SlqOptions(result.GetValue(steps), result.GetValue(probes), result.GetValue(sigma2), result.GetValue(gridPoints), Seed: result.GetValue(seed), BudgetBytes: budgetBytes))),
            });
            double seconds = watch.Elapsed.TotalSeconds;
            Render(context, set, map, methodName, result.GetValue(which)!, spectrum, seconds);
            JsonOutput.Write(result.GetValue(json), w => Write(w, map, methodName, result.GetValue(which)!, spectrum, seconds));
            return LandscapeApp.Success;
        });
        return command;
    }

    /// <summary>Parses <c>--which</c>.</summary>
    public static SpectrumEnd ParseWhich(string text) => text switch
    {
        "largest" => SpectrumEnd.Largest,
        "smallest" => SpectrumEnd.Smallest,
        "magnitude" => SpectrumEnd.LargestMagnitude,
        _ => throw new UsageException($"--which: '{text}' is not one of largest, smallest, magnitude"),
    };

    /// <summary>What one method found: eigenvalues in the order asked for, and its diagnostics.</summary>
    private sealed record Spectrum(
        string Operator,
        IReadOnlyList<double> Eigenvalues,
        IReadOnlyList<double>? Residuals,
        long Products,
        string Status,
        string Note,
        SlqResult? Slq = null,
        SlqOptions? SlqOptions = null,
        int? Iterations = null,
        double? Asymmetry = null);

    private static Spectrum Dense(LinearOperator op, CurvatureOperator kind, int k, SpectrumEnd which, long budgetBytes)
    {
        long n = op.Columns;
        // The n × n matrix, its symmetrised copy and eigh's workspace: about three dense matrices.
        double bytes = 3.0 * 8 * n * n;
        if (bytes > budgetBytes)
        {
            throw new UsageException(string.Create(CultureInfo.InvariantCulture,
                $"--method dense needs three dense {n} × {n} matrices ({bytes / 1e9:G3} GB), over the memory budget of {budgetBytes / 1e9:G3} GB; use --method lanczos (k extreme eigenvalues) or --method slq (the spectral density), or raise --budget-gb"));
        }
        var dense = DenseSpectrum.Compute(op, budgetBytes: budgetBytes);
        return new Spectrum(CurvatureOptions.Name(kind), dense.Select(which, k), null, dense.Applications, "Exact",
            string.Create(CultureInfo.InvariantCulture, $"all {n} eigenvalues of the dense matrix (n products, LAPACK eigh); asymmetry before symmetrising {dense.Asymmetry:G3}"),
            Asymmetry: dense.Asymmetry);
    }

    private static Spectrum Gram(ResidualMap map, int k, SpectrumEnd which, long budgetBytes)
    {
        long m = map.Constraints;
        double bytes = 3.0 * 8 * m * m;
        if (bytes > budgetBytes)
        {
            throw new UsageException(string.Create(CultureInfo.InvariantCulture,
                $"--method gram needs the ℓd × ℓd Gram matrix ({m} × {m}, {bytes / 1e9:G3} GB with eigh's workspace), over the memory budget of {budgetBytes / 1e9:G3} GB; use --method lanczos or --method slq, or a subset of the data"));
        }
        if (map.Exponent != 2.0)
        {
            throw new UsageException("--method gram needs the squared loss, where ∇²L = 2JᵀJ on M");
        }
        using var scope = NewDisposeScope();
        var gram = GramMatrix.Compute(map);
        // ∇²L = 2JᵀJ on M: its nonzero eigenvalues are those of 2JJᵀ, the other n − ℓd are 0.
        var values = linalg.eigvalsh((gram + gram.t()) / 2).mul(2.0).data<double>().ToList();
        values.AddRange(Enumerable.Repeat(0.0, (int)Math.Max(0, map.ParameterCount - m)));
        if (values.Count > map.ParameterCount)
        {
            // ℓd > n: JJᵀ has rank ≤ n, its ℓd − n smallest eigenvalues are the rounding of zeros that 2JᵀJ does not have.
            values = values.OrderByDescending(v => v).Take(map.ParameterCount).ToList();
        }
        double maxAbs = map.Residuals().abs().max().item<double>();
        double tolerance = 1e-8 * Math.Max(1.0, map.Data.MaxAbsTarget());
        bool onManifold = maxAbs <= tolerance;
        string note = onManifold
            ? string.Create(CultureInfo.InvariantCulture, $"on M (max|H| = {maxAbs:G3}): ∇²L = 2JᵀJ, eigenvalues 2·eig(JJᵀ) and n − ℓd zeros; valid on M only")
            : string.Create(CultureInfo.InvariantCulture, $"NOT on M (max|H| = {maxAbs:G3} > {tolerance:G3}): these are the eigenvalues of the Gauss-Newton matrix 2JᵀJ, not of ∇²L; use --method dense or lanczos for ∇²L");
        return new Spectrum("gauss-newton 2JᵀJ (gram)", Sorted(values, which, k), null, 0, onManifold ? "Exact" : "NotOnManifold", note);
    }

    private static Spectrum LanczosSpectrum(LinearOperator op, CurvatureOperator kind, LanczosOptions options)
    {
        var lanczos = Lanczos.Eigenpairs(op, options);
        lanczos.Eigenvectors.Dispose();
        string note = string.Create(CultureInfo.InvariantCulture,
            $"Lanczos with full re-orthogonalisation, {lanczos.Iterations} steps, {lanczos.Breakdowns} breakdowns; residuals ‖Hv − λv‖ computed explicitly (k more products); converged when ≤ {options.Tolerance:G3}·max|λ|");
        return new Spectrum(CurvatureOptions.Name(kind), lanczos.Eigenvalues, lanczos.ResidualNorms, lanczos.Applications, lanczos.Status.ToString(), note, Iterations: lanczos.Iterations);
    }

    private static Spectrum Slq(LinearOperator op, CurvatureOperator kind, SlqOptions options)
    {
        var slq = StochasticLanczosQuadrature.Estimate(op, options);
        string note = string.Create(CultureInfo.InvariantCulture,
            $"stochastic Lanczos quadrature: {options.ProbeCount} probes × {Math.Min(op.Columns, options.Steps)} steps, Gaussian broadening σ² = {options.Sigma2:G3} on [−1, 1] (σ = {slq.Sigma:G3}); defaults of Ghorbani, Krishnan & Xiao 2019 and PyHessian");
        return new Spectrum(CurvatureOptions.Name(kind), [], null, slq.Applications, slq.Status.ToString(), note, slq, options);
    }

    private static double[] Sorted(IEnumerable<double> values, SpectrumEnd which, int k)
    {
        var ordered = which switch
        {
            SpectrumEnd.Largest => values.OrderByDescending(v => v),
            SpectrumEnd.Smallest => values.OrderBy(v => v),
            _ => values.OrderByDescending(Math.Abs).ThenByDescending(v => v),
        };
        return ordered.Take(k).ToArray();
    }

    private static void Render(CliContext context, Dataset set, ResidualMap map, string method, string which, Spectrum s, double seconds)
    {
        string F(double v) => v.ToString("G6", CultureInfo.InvariantCulture);
        var info = new Table().Title(Markup.Escape($"spectrum ({method})")).AddColumns("quantity", "value");
        void Row(string key, string value) => info.AddRow(Markup.Escape(key), Markup.Escape(value));
        Row("data", $"{set.Source}: d = {set.Count}, ℓ = {set.OutputDim}");
        Row("parameters n", map.ParameterCount.ToString(CultureInfo.InvariantCulture));
        Row("operator", s.Operator);
        Row("status", s.Status);
        Row("how", s.Note);
        Row("Hessian-vector products", s.Products.ToString(CultureInfo.InvariantCulture));
        Row("time", string.Create(CultureInfo.InvariantCulture, $"{seconds:0.000} s"));
        if (s.Slq is { } slq)
        {
            double lo = slq.Rules.Min(r => r.Nodes.Min()), hi = slq.Rules.Max(r => r.Nodes.Max());
            Row("Ritz values span", $"[{F(lo)}, {F(hi)}]");
            for (int p = 0; p < slq.Moments.Count; p++)
            {
                Row($"tr(H^{p})/n", $"{F(slq.Moments[p])} ± {slq.MomentStandardErrors[p]:G3}");
            }
        }
        context.Console.Write(info);
        if (s.Slq is { } density)
        {
            context.Console.Write(Histogram(density));
            return;
        }
        var table = new Table().Title(Markup.Escape($"eigenvalues ({which})")).AddColumns("i", "λ");
        if (s.Residuals is not null)
        {
            table.AddColumn("‖Hv − λv‖");
        }
        for (int i = 0; i < s.Eigenvalues.Count; i++)
        {
            var cells = new List<string> { (i + 1).ToString(CultureInfo.InvariantCulture), F(s.Eigenvalues[i]) };
            if (s.Residuals is not null)
            {
                cells.Add(s.Residuals[i].ToString("G3", CultureInfo.InvariantCulture));
            }
            table.AddRow(cells.Select(Markup.Escape).ToArray());
        }
        context.Console.Write(table);
    }

    /// <summary>The quadrature mass in 20 equal bins of the Ritz range: mean over probes of Σ τ_i over the nodes in a bin.</summary>
    private static Table Histogram(SlqResult slq)
    {
        const int bins = 20;
        double lo = slq.Rules.Min(r => r.Nodes.Min()), hi = slq.Rules.Max(r => r.Nodes.Max());
        double width = Math.Max(hi - lo, double.Epsilon);
        var mass = new double[bins];
        foreach (var rule in slq.Rules)
        {
            for (int i = 0; i < rule.Nodes.Count; i++)
            {
                int b = Math.Clamp((int)((rule.Nodes[i] - lo) / width * bins), 0, bins - 1);
                mass[b] += rule.Weights[i] / slq.Rules.Count;
            }
        }
        var table = new Table().Title("spectral mass by interval (log scale bar)").AddColumns("interval", "mass", "");
        for (int b = 0; b < bins; b++)
        {
            double a = lo + b * width / bins, c = lo + (b + 1) * width / bins;
            int bar = mass[b] <= 0 ? 0 : Math.Clamp((int)Math.Round(40 + 4 * Math.Log10(mass[b])), 1, 40);
            table.AddRow(Markup.Escape(string.Create(CultureInfo.InvariantCulture, $"[{a:G4}, {c:G4})")), mass[b].ToString("G3", CultureInfo.InvariantCulture), new string('█', bar));
        }
        return table;
    }

    private static void Write(Utf8JsonWriter w, ResidualMap map, string method, string which, Spectrum s, double seconds)
    {
        w.WriteString("method", method);
        w.WriteString("operator", s.Operator);
        w.WriteString("which", which);
        w.WriteNumber("n", map.ParameterCount);
        w.WriteNumber("d", map.Data.Count);
        w.WriteNumber("outputs", map.Data.OutputDim);
        w.WriteString("status", s.Status);
        w.WriteString("note", s.Note);
        if (s.Slq is null)
        {
            WriteArray(w, "eigenvalues", s.Eigenvalues);
        }
        if (s.Residuals is not null)
        {
            WriteArray(w, "residuals", s.Residuals);
        }
        if (s.Iterations is { } iterations)
        {
            w.WriteNumber("iterations", iterations);
        }
        if (s.Asymmetry is { } asymmetry)
        {
            w.WriteNumber("asymmetry", asymmetry);
        }
        if (s.Slq is { } slq && s.SlqOptions is { } o)
        {
            w.WriteNumber("sigma", slq.Sigma);
            WriteArray(w, "grid", slq.Grid);
            WriteArray(w, "density", slq.Density);
            WriteArray(w, "moments", slq.Moments);
            WriteArray(w, "momentStandardErrors", slq.MomentStandardErrors);
            w.WriteNumber("breakdowns", slq.Breakdowns);
            w.WriteStartObject("options");
            w.WriteNumber("steps", o.Steps);
            w.WriteNumber("probes", o.ProbeCount);
            w.WriteNumber("sigma2", o.Sigma2);
            w.WriteNumber("gridPoints", o.GridPoints);
            w.WriteNumber("gridMargin", o.GridMargin);
            w.WriteNumber("seed", o.Seed);
            w.WriteString("source", "Ghorbani, Krishnan & Xiao 2019 (m = 90 steps, n_v = 10 probes, σ² = 1e−5 on [−1, 1]); grid of PyHessian's density_generate");
            w.WriteEndObject();
            w.WriteStartArray("quadrature");
            foreach (var rule in slq.Rules)
            {
                w.WriteStartObject();
                WriteArray(w, "nodes", rule.Nodes);
                WriteArray(w, "weights", rule.Weights);
                w.WriteEndObject();
            }
            w.WriteEndArray();
        }
        w.WriteNumber("hessianVectorProducts", s.Products);
        w.WriteNumber("seconds", seconds);
    }

    /// <summary>Writes a named array of numbers.</summary>
    internal static void WriteArray(Utf8JsonWriter w, string name, IEnumerable<double> values)
    {
        w.WriteStartArray(name);
        foreach (var v in values)
        {
            w.WriteNumberValue(v);
        }
        w.WriteEndArray();
    }
}
