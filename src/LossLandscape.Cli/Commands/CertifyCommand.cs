using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using LossLandscape.Data;
using LossLandscape.Geometry;
using LossLandscape.Reports;
using Spectre.Console;
using static TorchSharp.torch;

namespace LossLandscape.Cli.Commands;

/// <summary>
/// <c>landscape certify --model M --data D (--target|--one-hot) [--method auto|dense|gram] [--perturb EPS] [--json F]</c>:
/// loss, residual, on-M, rank of J with its tolerance and gap, dim M, regularity, inertia of ∇²L.
/// </summary>
public static class CertifyCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create(CliContext context)
    {
        var command = new Command("certify", "Certify a point: on M?, rank of J and dim M = n − rank (Theorem 2.1/4.1), inertia of ∇²L (Proposition 2.3).");
        var model = CommonOptions.Model();
        command.Options.Add(model);
        var data = new CommonOptions.DataOptions(command);
        var method = new Option<string>("--method") { Description = "auto | dense (all n eigenvalues) | gram (2·eig(JJᵀ) on M)", DefaultValueFactory = _ => "auto" };
        var perturb = new Option<double?>("--perturb") { Description = "Theorem 2.1: perturb the targets by |r| < EPS, move onto the new M, certify again" };
        var seed = new Option<int>("--seed") { Description = "seed of the perturbation", DefaultValueFactory = _ => 0 };
        var tolerance = new Option<double>("--tolerance") { Description = "on M when max|H| ≤ this·max(1, max|y|)", DefaultValueFactory = _ => 1e-8 };
        var json = CommonOptions.Json();
        foreach (var o in new Option[] { method, perturb, seed, tolerance, json })
        {
            command.Options.Add(o);
        }
        command.SetAction(result =>
        {
            LandscapeApp.Initialize();
            var point = CommonOptions.LoadModel(result.GetValue(model)!);
            var set = data.Load(result);
            var options = new CertificateOptions(ParseMethod(result.GetValue(method)!), result.GetValue(tolerance));
            using var scope = NewDisposeScope();
            using var m = point.ToModel();
            var first = context.WithProgress("certify", _ => Certificate.Compute(new ResidualMap(m, set), options));
            Render(context, "certificate", set, first);
            PerturbationResult? perturbation = null;
            CertificateResult? second = null;
            if (result.GetValue(perturb) is { } eps)
            {
                perturbation = context.WithProgress("perturb", _ => RegularValuePerturbation.Apply(m, set, eps, result.GetValue(seed), first.OnManifoldTolerance * 1e-2));
                second = Certificate.Compute(new ResidualMap(m, perturbation.Perturbed), options);
                context.Console.MarkupLine(Markup.Escape($"perturbed targets by |r| = {perturbation.PerturbationNorm:G3} < ε = {eps:G3}; moved {perturbation.Projection.Distance:G3} onto the new M in {perturbation.Projection.Steps} Gauss–Newton steps"));
                Render(context, "certificate after the perturbation", perturbation.Perturbed, second);
            }
            JsonOutput.Write(result.GetValue(json), w =>
            {
                Write(w, first);
                if (perturbation is not null && second is not null)
                {
                    w.WriteStartObject("perturbation");
                    w.WriteNumber("epsilon", result.GetValue(perturb)!.Value);
                    w.WriteNumber("norm", perturbation.PerturbationNorm);
                    w.WriteNumber("distanceMoved", perturbation.Projection.Distance);
                    w.WriteNumber("gaussNewtonSteps", perturbation.Projection.Steps);
                    w.WriteStartObject("certificate");
                    Write(w, second);
                    w.WriteEndObject();
                    w.WriteEndObject();
                }
            });
            return LandscapeApp.Success;
        });
        return command;
    }

    /// <summary>Parses <c>--method</c>.</summary>
    public static InertiaMethod ParseMethod(string text) => text switch
    {
        "auto" => InertiaMethod.Auto,
        "dense" => InertiaMethod.Dense,
        "gram" => InertiaMethod.Gram,
        _ => throw new UsageException($"--method: '{text}' is not one of auto, dense, gram"),
    };

    /// <summary>Prints a certificate.</summary>
    public static void Render(CliContext context, string title, Dataset set, CertificateResult c)
    {
        string F(double v) => v.ToString("G4", CultureInfo.InvariantCulture);
        var j = c.Jacobian;
        var h = c.Hessian;
        var table = new Table().Title(Markup.Escape(title)).AddColumns("quantity", "value");
        void Row(string k, string v) => table.AddRow(Markup.Escape(k), Markup.Escape(v));
        Row("data", $"{set.Source}: d = {c.D}, ℓ = {c.Outputs}, ℓd = {c.Constraints}");
        Row("parameters n", c.N.ToString(CultureInfo.InvariantCulture));
        Row("loss L", F(c.Loss));
        Row("max |H_k|", F(c.MaxAbsResidual));
        Row("on M", CertificateText.OnManifold(c));
        Row("rank J", $"{j.Rank} of ℓd = {c.Constraints} ({j.Basis}; tolerance {F(j.Tolerance)}; {(j.Decided ? "decided" : "NOT decided")})");
        Row("σ(J) at the gap", $"σmax {F(j.SigmaMax)}, σ_rank {F(j.SigmaAbove)} | σ_rank+1 {F(j.SigmaBelow)}; σmax/σ_rank {F(j.SigmaMax / Math.Max(j.SigmaAbove, double.Epsilon))}");
        Row("dim M = n − rank", c.ManifoldDimension.ToString(CultureInfo.InvariantCulture));
        Row("regular point", c.RegularPoint ? "yes (rank = ℓd)" : "no (rank < ℓd)");
        Row("inertia of ∇²L", $"{h.Positive} positive, {h.Zero} zero, {h.Negative} negative ({h.Method}, tolerance {F(h.Tolerance)}{(h.Decided ? "" : "; NOT decided")})");
        Row("how", h.Note);
        if (h.Eigenvalues.Length > 0)
        {
            Row("nonzero eigenvalues", $"{F(h.Eigenvalues[0])} … {F(h.Eigenvalues[^1])}");
        }
        Row("time", $"{c.Seconds:0.00} s");
        context.Console.Write(table);
    }

    /// <summary>The certificate's JSON fields (the names the project promises, and more).</summary>
    public static void Write(Utf8JsonWriter w, CertificateResult c)
    {
        w.WriteNumber("n", c.N);
        w.WriteNumber("d", c.D);
        w.WriteNumber("outputs", c.Outputs);
        w.WriteNumber("constraints", c.Constraints);
        w.WriteNumber("loss", c.Loss);
        w.WriteNumber("maxAbsResidual", c.MaxAbsResidual);
        w.WriteNumber("onManifoldTolerance", c.OnManifoldTolerance);
        w.WriteBoolean("onManifold", c.OnManifold);
        w.WriteStartObject("jacobian");
        w.WriteNumber("rank", c.Jacobian.Rank);
        w.WriteNumber("tolerance", c.Jacobian.Tolerance);
        w.WriteNumber("resolution", c.Jacobian.Resolution);
        w.WriteNumber("sigmaMax", c.Jacobian.SigmaMax);
        w.WriteNumber("sigmaMin", c.Jacobian.SigmaMin);
        w.WriteNumber("sigmaNext", c.Jacobian.SigmaNext);
        w.WriteNumber("sigmaAbove", c.Jacobian.SigmaAbove);
        w.WriteNumber("sigmaBelow", c.Jacobian.SigmaBelow);
        w.WriteBoolean("decided", c.Jacobian.Decided);
        w.WriteString("basis", c.Jacobian.Basis);
        w.WriteEndObject();
        w.WriteNumber("manifoldDimension", c.ManifoldDimension);
        w.WriteBoolean("regularPoint", c.RegularPoint);
        w.WriteStartObject("hessian");
        w.WriteString("method", c.Hessian.Method);
        w.WriteNumber("positive", c.Hessian.Positive);
        w.WriteNumber("zero", c.Hessian.Zero);
        w.WriteNumber("negative", c.Hessian.Negative);
        w.WriteNumber("tolerance", c.Hessian.Tolerance);
        w.WriteBoolean("decided", c.Hessian.Decided);
        w.WriteString("note", c.Hessian.Note);
        if (c.Hessian.ResidualTermNorm is { } r)
        {
            w.WriteNumber("residualTermNorm", r);
        }
        w.WriteStartArray("eigenvalues");
        foreach (var v in c.Hessian.Eigenvalues)
        {
            w.WriteNumberValue(v);
        }
        w.WriteEndArray();
        w.WriteEndObject();
        w.WriteNumber("seconds", c.Seconds);
    }
}
