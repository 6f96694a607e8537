using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using LossLandscape.Curvature;
using LossLandscape.Data;
using LossLandscape.Engine;
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
        var tolerance = new Option<double>("--tolerance") { Description = "Lanczos: a pair is converged when ‖Hv − λv‖ ≤ this·max|λ|", DefaultValueFactory = _ => new SpectrumOptions().Tolerance };
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
            var spectrumMethod = ParseMethod(methodName);
            string whichName = result.GetValue(which)!;
            var end = ParseWhich(whichName);
            int count = result.GetValue(k);
            if (count < 1)
            {
                throw new UsageException($"--k: {count} is not a positive number of eigenvalues");
            }
            var kind = CurvatureOptions.ParseOperator(result.GetValue(curvature)!);
            long budgetBytes = CurvatureOptions.BudgetBytes(result.GetValue(budget));
            var options = new SpectrumOptions(spectrumMethod, kind, count, end, result.GetValue(tolerance), result.GetValue(maxIterations), result.GetValue(seed), budgetBytes,
                Slq: new SlqOptions(result.GetValue(steps), result.GetValue(probes), result.GetValue(sigma2), result.GetValue(gridPoints)));
            LandscapeApp.Initialize();
            var point = CommonOptions.LoadModel(result.GetValue(model)!);
            var set = data.Load(result);
            using var scope = NewDisposeScope();
            using var m = point.ToModel();
            using var map = new ResidualMap(m, set, batchSize: result.GetValue(batchSize));
            SpectrumResult spectrum;
            try
            {
                spectrum = context.WithProgress($"{methodName} spectrum", progress => HessianSpectrum.Compute(map, options, progress));
            }
            catch (MemoryBudgetExceededException e)
            {
                // The library names its own alternatives; on the command line they are options.
                throw new MemoryBudgetExceededException($"--method {methodName}", e.RequiredBytes, e.BudgetBytes,
                    "use --method lanczos (k extreme eigenvalues) or --method slq (the spectral density), or raise --budget-gb");
            }
            Render(context, set, map, methodName, whichName, spectrum);
            JsonOutput.Write(result.GetValue(json), w => Write(w, map, methodName, whichName, spectrum));
            return LandscapeApp.Success;
        });
        return command;
    }

    /// <summary>Parses <c>--method</c>.</summary>
    public static SpectrumMethod ParseMethod(string text) => text switch
    {
        "dense" => SpectrumMethod.Dense,
        "gram" => SpectrumMethod.Gram,
        "lanczos" => SpectrumMethod.Lanczos,
        "slq" => SpectrumMethod.Slq,
        _ => throw new UsageException($"--method: '{text}' is not one of dense, gram, lanczos, slq"),
    };

    /// <summary>Parses <c>--which</c>.</summary>
    public static SpectrumEnd ParseWhich(string text) => text switch
    {
        "largest" => SpectrumEnd.Largest,
        "smallest" => SpectrumEnd.Smallest,
        "magnitude" => SpectrumEnd.LargestMagnitude,
        _ => throw new UsageException($"--which: '{text}' is not one of largest, smallest, magnitude"),
    };

    /// <summary>
    /// The eigenvalue as the table prints it: the number when it is one; "0 ± b" for a zero known from rank J; and for a Lanczos
    /// value that did not converge, the bound it is ("θ ± ρ, not converged": some eigenvalue lies within ρ of θ).
    /// </summary>
    public static string Cell(SpectrumResult s, int i)
    {
        ArgumentNullException.ThrowIfNull(s);
        string F(double v) => v.ToString("G6", CultureInfo.InvariantCulture);
        if (s.Zeros is { } zeros)
        {
            return $"0 ± {zeros.Bound.ToString("G3", CultureInfo.InvariantCulture)}";
        }
        if (!s.Converged[i])
        {
            string within = s.Residuals is { } r ? $" ± {r[i].ToString("G3", CultureInfo.InvariantCulture)}" : "";
            return $"NOT CONVERGED: {F(s.Eigenvalues[i])}{within} (a Ritz value, not an eigenvalue)";
        }
        return F(s.Eigenvalues[i]);
    }

    private static void Render(CliContext context, Dataset set, ResidualMap map, string method, string which, SpectrumResult s)
    {
        string F(double v) => v.ToString("G6", CultureInfo.InvariantCulture);
        string G(double v) => v.ToString("G3", CultureInfo.InvariantCulture);
        var info = new Table().Title(Markup.Escape($"spectrum ({method})")).AddColumns("quantity", "value");
        void Row(string key, string value) => info.AddRow(Markup.Escape(key), Markup.Escape(value));
        Row("data", $"{set.Source}: d = {set.Count}, ℓ = {set.OutputDim}");
        Row("parameters n", map.ParameterCount.ToString(CultureInfo.InvariantCulture));
        Row("operator", s.Operator);
        Row("status", s.Status.ToJsonName());
        Row("how", s.Note);
        if (s.Manifold is { } manifold)
        {
            Row("on M", manifold.Holds ? $"yes (max|H| = {G(manifold.MaxAbsResidual)} ≤ {G(manifold.Tolerance)})" : $"no (max|H| = {G(manifold.MaxAbsResidual)} > tolerance {G(manifold.Tolerance)})");
        }
        if (s.Zeros is { } zeros)
        {
            Row("zero eigenvalues", $"{zeros.Multiplicity} = n − rank J (rank J = {zeros.Rank.Rank} ≤ ℓd = {map.Constraints}), each within ±{G(zeros.Bound)}; ‖∇²L − 2JᵀJ‖₂ ≈ {G(zeros.ResidualTermNorm)} (estimated); the rest ≥ {G(zeros.LowestNonzero)}");
        }
        if (s.Inertia is { } inertia)
        {
            Row("inertia of ∇²L", $"{inertia.Positive} positive, {inertia.Zero} zero, {inertia.Negative} negative ({(inertia.Decided ? "decided" : "NOT decided")}: {inertia.Note})");
        }
        int unconverged = s.Converged.Count(c => !c);
        if (unconverged > 0)
        {
            Row("NOT converged", $"{unconverged} of {s.Converged.Count} values: Ritz values with an eigenvalue within their residual, not eigenvalues (raise --max-iterations)");
        }
        Row("Hessian-vector products", s.Products.ToString(CultureInfo.InvariantCulture));
        Row("time", string.Create(CultureInfo.InvariantCulture, $"{s.Seconds:0.000} s"));
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
        if (s.Method == SpectrumMethod.Lanczos)
        {
            table.AddColumn("converged");
        }
        for (int i = 0; i < s.Eigenvalues.Count; i++)
        {
            var cells = new List<string> { (i + 1).ToString(CultureInfo.InvariantCulture), Cell(s, i) };
            if (s.Residuals is not null)
            {
                cells.Add(s.Residuals[i].ToString("G3", CultureInfo.InvariantCulture));
            }
            if (s.Method == SpectrumMethod.Lanczos)
            {
                cells.Add(s.Converged[i] ? "yes" : "NO");
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

    private static void Write(Utf8JsonWriter w, ResidualMap map, string method, string which, SpectrumResult s)
    {
        w.WriteString("method", method);
        w.WriteString("operator", s.Operator);
        w.WriteString("which", which);
        w.WriteNumber("n", map.ParameterCount);
        w.WriteNumber("d", map.Data.Count);
        w.WriteNumber("outputs", map.Data.OutputDim);
        w.WriteString("status", s.Status.ToJsonName());
        w.WriteString("note", s.Note);
        if (s.Slq is null)
        {
            WriteArray(w, "eigenvalues", s.Eigenvalues);
            w.WriteStartArray("converged");
            foreach (var c in s.Converged)
            {
                w.WriteBooleanValue(c);
            }
            w.WriteEndArray();
        }
        if (s.Residuals is not null)
        {
            WriteArray(w, "residuals", s.Residuals);
        }
        if (s.AllEigenvalues is { } all)
        {
            WriteArray(w, "allEigenvalues", all);
        }
        if (s.Manifold is { } manifold)
        {
            w.WriteBoolean("onManifold", manifold.Holds);
            w.WriteNumber("maxAbsResidual", manifold.MaxAbsResidual);
            w.WriteNumber("onManifoldTolerance", manifold.Tolerance);
        }
        if (s.Zeros is { } zeros)
        {
            w.WriteStartObject("zeros");
            w.WriteNumber("multiplicity", zeros.Multiplicity);
            w.WriteNumber("bound", zeros.Bound);
            w.WriteNumber("residualTermNorm", zeros.ResidualTermNorm);
            w.WriteBoolean("residualTermEstimated", zeros.ResidualTermSteps > 0);
            w.WriteNumber("residualTermSteps", zeros.ResidualTermSteps);
            w.WriteNumber("rank", zeros.Rank.Rank);
            w.WriteNumber("constraints", map.Constraints);
            if (double.IsFinite(zeros.LowestNonzero))
            {
                w.WriteNumber("lowestNonzero", zeros.LowestNonzero);
            }
            else
            {
                w.WriteNull("lowestNonzero");
            }
            w.WriteString("rule", "zero within ±bound, multiplicity n − rank J from rank J ≤ ℓd (Weyl: ∇²L = 2JᵀJ + R on M)");
            w.WriteEndObject();
        }
        if (s.Inertia is { } inertia)
        {
            w.WriteStartObject("inertia");
            w.WriteNumber("positive", inertia.Positive);
            w.WriteNumber("zero", inertia.Zero);
            w.WriteNumber("negative", inertia.Negative);
            w.WriteBoolean("decided", inertia.Decided);
            w.WriteString("note", inertia.Note);
            w.WriteEndObject();
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
        w.WriteNumber("seconds", s.Seconds);
    }

    /// <summary>Writes a named array of numbers (non-finite values as null).</summary>
    internal static void WriteArray(Utf8JsonWriter w, string name, IEnumerable<double> values)
    {
        w.WriteStartArray(name);
        foreach (var v in values)
        {
            if (double.IsFinite(v))
            {
                w.WriteNumberValue(v);
            }
            else
            {
                w.WriteNullValue();
            }
        }
        w.WriteEndArray();
    }
}
