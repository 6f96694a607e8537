using System.CommandLine;
using System.Globalization;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using LossLandscape.Data;
using LossLandscape.Engine;
using LossLandscape.Geometry;
using LossLandscape.Reports;
using Spectre.Console;

namespace LossLandscape.Cli.Commands;

/// <summary>
/// <c>landscape certify --model M --data D (--target|--one-hot) [--method auto|dense|gram] [--perturb EPS] [--json F]</c>:
/// loss, residual, on-M, rank of J with its tolerance and gap, n − rank J (dim M at a point of M), regularity, inertia of ∇²L;
/// whatever was not decided says "not decided" and why (<see cref="CertificateText.Rows"/>).
/// </summary>
/// <remarks>
/// One library call, <see cref="Certificate.Compute"/>; with <c>--perturb</c>, Theorem 2.1's perturbation
/// (<see cref="RegularValuePerturbation.Apply"/>) and the certificate of the perturbed point.
/// </remarks>
internal sealed class CertifyCommand : LandscapeCommand<CertifyCommand.Settings, CertificateOutput>
{
    private readonly Option<string> _method = new("--method") { Description = "auto | dense (all n eigenvalues) | gram (2·eig(JJᵀ) on M)", DefaultValueFactory = _ => "auto" };
    private readonly Option<double?> _perturb = new("--perturb") { Description = "Theorem 2.1: perturb the targets by |r| < EPS, move onto the new M, certify again" };
    private readonly Option<double> _tolerance = new("--tolerance") { Description = "on M when max|H| ≤ this·max(1, max|y|)", DefaultValueFactory = _ => OnManifoldTest.DefaultRelativeTolerance };

    private CertifyCommand()
        : base("certify", "Certify a point: on M?, rank of J and n − rank J, dim M on M (Theorem 2.1/4.1), inertia of ∇²L (Proposition 2.3); what is not decided says so and why.",
            SharedOptions.Model | SharedOptions.Data | SharedOptions.Seed | SharedOptions.BatchSize | SharedOptions.Budget | SharedOptions.Cluster | SharedOptions.Json, seedDescription: "seed of the perturbation", batchSizeDescription: CurvatureOptions.BatchSizeDescription)
        => Add(_method, _perturb, _tolerance);

    /// <summary>Builds the command.</summary>
    public static Command Create(CliContext context) => new CertifyCommand().Build(context);

    /// <summary>The settings of <c>certify</c>.</summary>
    internal sealed record Settings : LandscapeSettings
    {
        /// <summary><c>--method auto|dense|gram</c>.</summary>
        public string Method { get; init; } = "auto";

        /// <summary><c>--perturb EPS</c>: the bound ε on the perturbation of the targets, or null for none.</summary>
        public double? Perturb { get; init; }

        /// <summary><c>--tolerance</c>: the on-M rule's relative tolerance.</summary>
        public double Tolerance { get; init; } = OnManifoldTest.DefaultRelativeTolerance;

        /// <summary>The library's options (throws <see cref="UsageException"/> for an unknown <c>--method</c>).</summary>
        public CertificateOptions ToOptions() => new(ParseMethod(Method), Tolerance);
    }

    /// <inheritdoc/>
    protected internal override JsonTypeInfo<CertificateOutput> JsonType => LandscapeJsonContext.Default.CertificateOutput;

    /// <inheritdoc/>
    protected override Settings Bind(ParseResult result) => new()
    {
        Method = result.GetValue(_method)!,
        Perturb = result.GetValue(_perturb),
        Tolerance = result.GetValue(_tolerance),
    };

    /// <inheritdoc/>
    public override void Validate(Settings settings)
    {
        _ = settings.ToOptions();
        if (!(settings.Tolerance > 0) || !double.IsFinite(settings.Tolerance))
        {
            throw new UsageException($"--tolerance: {settings.Tolerance.ToString(CultureInfo.InvariantCulture)} is not a positive number");
        }
        // RegularValuePerturbation refuses ε ≤ 0 too, but only after the first certificate has been computed.
        if (settings.Perturb is { } eps && (!(eps > 0) || !double.IsFinite(eps)))
        {
            throw new UsageException($"--perturb: {eps.ToString(CultureInfo.InvariantCulture)} is not a positive number");
        }
        if (settings.Cluster is not null && settings.Perturb is not null)
        {
            // The perturbed targets y + εu exist in this process only: the workers read the data source as it is.
            throw new UsageException("--cluster: --perturb certifies the fibre H⁻¹(εu) of perturbed targets, which the workers (reading the data source itself) do not have; run --perturb without --cluster");
        }
    }

    /// <inheritdoc/>
    protected override CertificateOutput Execute(CommandRun run, Settings settings)
    {
        var options = settings.ToOptions();
        var first = run.Progress("certify", limits => Certificate.Compute(run.Problem, options, limits));
        if (settings.Perturb is not { } eps)
        {
            return new CertificateOutput(first, run.Data);
        }
        // The model moves onto the perturbed M; run.Problem is not used after this.
        var (perturbation, second) = run.Progress("perturb and certify again", limits => RegularValuePerturbation.Certify(run.Model, run.Rows, eps, settings.Seed, options, limits));
        return new CertificateOutput(first, run.Data)
        {
            Perturbation = new PerturbationOutput(eps, perturbation.PerturbationNorm, perturbation.Projection.Distance, perturbation.Projection.Steps,
                perturbation.Projection.Status, new CertificateOutput(second, perturbation.Perturbed)),
        };
    }

    /// <inheritdoc/>
    protected override void Render(CliContext context, Settings settings, CertificateOutput result)
    {
        Render(context, "certificate", result.Dataset, result.Result);
        if (result.Cluster is { } cluster)
        {
            context.Console.MarkupLine(Markup.Escape($"cluster: {cluster.Describe()}"));
        }
        if (result.Perturbation is { } p)
        {
            context.Console.MarkupLine(Markup.Escape($"perturbed targets by |r| = {p.Norm:G3} < ε = {p.Epsilon:G3}; {(p.Status == SolverStatus.Converged ? "moved" : $"the move did NOT converge ({p.Status.ToJsonName()}): moved")} {p.DistanceMoved:G3} towards the new M in {p.GaussNewtonSteps} Gauss–Newton steps"));
            Render(context, "certificate after the perturbation", p.Certificate.Dataset, p.Certificate.Result);
        }
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
    public static void Render(CliContext context, string title, IDataSource set, CertificateResult c)
    {
        var table = new Table().Title(Markup.Escape(title)).AddColumns("quantity", "value");
        // The library's rows (CertificateText.Rows), the same the report shows, and the time.
        foreach (var (quantity, value) in CertificateText.Rows(c, set.Source))
        {
            table.AddRow(Markup.Escape(quantity), Markup.Escape(value));
        }
        table.AddRow("time", Markup.Escape(string.Create(CultureInfo.InvariantCulture, $"{c.Seconds:0.00} s")));
        context.Console.Write(table);
    }
}

/// <summary>
/// The result of <c>landscape certify</c>, and its JSON: the library's certificate (without the singular values of J and
/// the n eigenvalues of a dense run, which <see cref="RankDecision"/> and <see cref="Inertia"/> leave out of the JSON),
/// and with <c>--perturb</c> the perturbation and the certificate after it.
/// </summary>
/// <param name="Result">The certificate (<see cref="Certificate.Compute"/>), written in place (<see cref="JsonOutput.Inline"/>).</param>
/// <param name="Dataset">The data the certificate is of (the perturbed data for the certificate after the perturbation; not written).</param>
internal sealed record CertificateOutput(
    [property: JsonPropertyName(JsonOutput.Inline)] CertificateResult Result,
    [property: JsonIgnore] IDataSource Dataset) : ClusterReported<CertificateOutput>
{
    /// <summary>With <c>--perturb</c>: the perturbation and the certificate of the perturbed point; else null (not written).</summary>
    public PerturbationOutput? Perturbation { get; init; }
}

/// <summary>Theorem 2.1's perturbation (<see cref="PerturbationResult"/>), as <c>certify --perturb</c>'s JSON writes it.</summary>
/// <param name="Epsilon">The bound ε given.</param>
/// <param name="Norm">|r|, the size of the perturbation of the targets (&lt; ε).</param>
/// <param name="DistanceMoved">How far the point moved onto the new M.</param>
/// <param name="GaussNewtonSteps">Gauss–Newton steps of that move.</param>
/// <param name="Status">How the Gauss–Newton move onto the new M ended.</param>
/// <param name="Certificate">The certificate of the perturbed point.</param>
internal sealed record PerturbationOutput(double Epsilon, double Norm, double DistanceMoved, int GaussNewtonSteps, SolverStatus Status, CertificateOutput Certificate);
