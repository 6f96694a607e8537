using LossLandscape.Engine;
using System.CommandLine;
using Stopwatch = System.Diagnostics.Stopwatch;
using System.Globalization;
using LossLandscape.Curvature;
using LossLandscape.Geometry;
using Spectre.Console;
using static TorchSharp.torch;

namespace LossLandscape.Cli.Commands;

/// <summary>
/// <c>landscape trace --model M --data D (--target|--one-hot) --method hutchinson|hutch++|exact [--operator hessian|ggn]
/// [--probes N] [--seed S] [--batch-size B] [--json F]</c>: tr ∇²L with its standard error, the Hessian-vector
/// products used and the wall time.
/// </summary>
internal static class TraceCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create(CliContext context)
    {
        var command = new Command("trace", "The trace of ∇²L: Hutchinson or Hutch++ with a standard error, or exact from n Hessian-vector products.");
        var model = CommonOptions.Model();
        command.Options.Add(model);
        var data = new CommonOptions.DataOptions(command);
        var method = new Option<string>("--method") { Description = "hutchinson | hutch++ | exact (Σ eᵢᵀHeᵢ, n products)", DefaultValueFactory = _ => "hutch++" };
        var curvature = CurvatureOptions.Operator();
        var probes = new Option<int?>("--probes") { Description = "the budget of products: Hutchinson's most probes (default 100, PyHessian), Hutch++'s total (default 99)" };
        var tolerance = new Option<double>("--tolerance") { Description = "Hutchinson stops when the standard error ≤ this·|estimate| (default 1e−3, PyHessian)", DefaultValueFactory = _ => new TraceOptions().Tolerance };
        var seed = new Option<int>("--seed") { Description = "seed of the Rademacher probes", DefaultValueFactory = _ => 0 };
        var batchSize = CurvatureOptions.BatchSize();
        var json = CommonOptions.Json();
        foreach (var o in new Option[] { method, curvature, probes, tolerance, seed, batchSize, json })
        {
            command.Options.Add(o);
        }
        command.SetAction(result =>
        {
            string methodName = result.GetValue(method)!;
            if (methodName is not ("hutchinson" or "hutch++" or "exact"))
            {
                throw new UsageException($"--method: '{methodName}' is not one of hutchinson, hutch++, exact");
            }
            int? budget = result.GetValue(probes);
            if (budget is { } b && (b < 1 || (methodName == "hutch++" && b < 3)))
            {
                throw new UsageException($"--probes: {b} is too few ({(methodName == "hutch++" ? "Hutch++ needs at least 3" : "at least 1")})");
            }
            var kind = CurvatureOptions.ParseOperator(result.GetValue(curvature)!);
            LandscapeApp.Initialize();
            var point = CommonOptions.LoadModel(result.GetValue(model)!);
            var set = data.Load(result);
            using var scope = NewDisposeScope();
            using var m = point.ToModel();
            using var map = new ResidualMap(m, set, batchSize: result.GetValue(batchSize));
            var op = CurvatureOperators.Create(map, kind);
            var watch = Stopwatch.StartNew();
            var options = new TraceOptions(budget ?? (methodName == "hutch++" ? 99 : 100), result.GetValue(tolerance), Seed: result.GetValue(seed));
            var trace = context.WithProgress("trace", progress => methodName switch
            {
                "hutchinson" => Hutchinson.Trace(op, options),
                "hutch++" => HutchPlusPlus.Trace(op, options),
                _ => ExactTrace.Compute(op, progress: progress),
            });
            double seconds = watch.Elapsed.TotalSeconds;
            string note = methodName switch
            {
                "hutchinson" => string.Create(CultureInfo.InvariantCulture, $"Hutchinson 1990: mean of {trace.Samples.Count} Rademacher samples zᵀHz, standard error s/√N; stops when it is ≤ {options.Tolerance:G3}·|estimate|"),
                "hutch++" => string.Create(CultureInfo.InvariantCulture, $"Hutch++ (Meyer et al. 2021): tr(QᵀHQ) = {trace.LowRankPart:G6} on a sketch of {options.MaxProbes / 3} vectors, plus Hutchinson on the deflated rest ({trace.Samples.Count} samples)"),
                _ => $"exact: Σ eᵢᵀHeᵢ over the n = {op.Columns} unit vectors",
            };

            string F(double v) => v.ToString("G8", CultureInfo.InvariantCulture);
            var table = new Table().Title(Markup.Escape($"trace ({methodName})")).AddColumns("quantity", "value");
            void Row(string key, string value) => table.AddRow(Markup.Escape(key), Markup.Escape(value));
            Row("data", $"{set.Source}: d = {set.Count}, ℓ = {set.OutputDim}");
            Row("parameters n", map.ParameterCount.ToString(CultureInfo.InvariantCulture));
            Row("operator", CurvatureOperators.Name(kind));
            Row("trace", $"{F(trace.Trace)} ± {trace.StandardError:G3}");
            Row("status", trace.Status.ToJsonName());
            Row("how", note);
            Row("Hessian-vector products", trace.Applications.ToString(CultureInfo.InvariantCulture));
            Row("time", string.Create(CultureInfo.InvariantCulture, $"{seconds:0.000} s"));
            context.Console.Write(table);
            JsonOutput.Write(result.GetValue(json), w =>
            {
                w.WriteString("method", methodName);
                w.WriteString("operator", CurvatureOperators.Name(kind));
                w.WriteNumber("n", map.ParameterCount);
                w.WriteNumber("trace", trace.Trace);
                w.WriteNumber("standardError", trace.StandardError);
                w.WriteNumber("lowRankPart", trace.LowRankPart);
                w.WriteNumber("samples", trace.Samples.Count);
                w.WriteString("status", trace.Status.ToJsonName());
                w.WriteString("note", note);
                w.WriteNumber("hessianVectorProducts", trace.Applications);
                w.WriteNumber("seconds", seconds);
            });
            return LandscapeApp.Success;
        });
        return command;
    }
}
