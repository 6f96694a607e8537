using System.CommandLine;
using System.Globalization;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using LossLandscape.Curvature;
using Spectre.Console;

namespace LossLandscape.Cli.Commands;

/// <summary>
/// <c>landscape approx --model M --data D [--loss L] --kind kfac,ekfac,diag,block --against ggn|hessian [--k K] [--probes N]
/// [--mc-samples N] [--seed S] [--json F]</c>: how far each curvature approximation is from the exact matrix on this network — the relative
/// Frobenius error, the trace error, the top-K eigenvalues side by side and the overlap of the top-K eigenspaces.
/// </summary>
/// <remarks>One library call, <see cref="ApproximationComparison.Compute"/>; its <see cref="ApproximationReport"/> is rendered and serialised.</remarks>
internal sealed class ApproxCommand : LandscapeCommand<ApproxCommand.Settings, ApproxOutput>
{
    private readonly Option<string> _kind = new("--kind") { Description = $"the approximations, comma-separated: {string.Join(", ", ApproximationComparison.Names)} (default all)", DefaultValueFactory = _ => string.Join(",", ApproximationComparison.Names) };
    private readonly Option<string> _against = CurvatureOptions.Against();
    private readonly Option<int> _k = new("--k") { Description = "top eigenvalues compared (default 5)", DefaultValueFactory = _ => new ApproximationOptions().K };
    private readonly Option<int?> _mcSamples = new("--mc-samples") { Description = "KFAC and EKFAC from the Monte Carlo Fisher with N labels drawn per row (seeded by --seed) instead of the exact output curvature" };
    private readonly Option<int> _probes = new("--probes") { Description = "Rademacher probes of the Frobenius errors when the dense matrices exceed the budget (default 30)", DefaultValueFactory = _ => new ApproximationOptions().FrobeniusProbes };

    private ApproxCommand()
        : base("approx", "How far curvature approximations (KFAC, EKFAC, the diagonal, the per-layer block diagonal) are from the exact Gauss–Newton matrix or Hessian of this network.",
            SharedOptions.Model | SharedOptions.Data | SharedOptions.Seed | SharedOptions.BatchSize | SharedOptions.Budget | SharedOptions.Json,
            seedDescription: "seed of the probes and of the Lanczos start vectors", batchSizeDescription: CurvatureOptions.BatchSizeDescription)
        => Add(_kind, _against, _k, _probes, _mcSamples);

    /// <summary>Builds the command.</summary>
    public static Command Create(CliContext context) => new ApproxCommand().Build(context);

    /// <summary>The settings of <c>approx</c>.</summary>
    internal sealed record Settings : LandscapeSettings
    {
        /// <summary><c>--kind</c>: the approximations' names, comma-separated.</summary>
        public string Kind { get; init; } = string.Join(",", ApproximationComparison.Names);

        /// <summary><c>--against ggn|hessian</c>.</summary>
        public string Against { get; init; } = "ggn";

        /// <summary><c>--k</c>.</summary>
        public int K { get; init; } = new ApproximationOptions().K;

        /// <summary><c>--probes</c>.</summary>
        public int Probes { get; init; } = new ApproximationOptions().FrobeniusProbes;

        /// <summary><c>--mc-samples N</c>: the Monte Carlo Fisher's draws per row, or null for the exact output curvature.</summary>
        public int? MonteCarloSamples { get; init; }

        /// <summary>The library's options; an unknown kind or matrix, or a K below 1, is a usage error naming the option.</summary>
        public ApproximationOptions ToOptions()
        {
            var kinds = new List<ApproximationKind>();
            foreach (var name in Kind.Split(',', StringSplitOptions.TrimEntries))
            {
                if (!ApproximationComparison.Names.Contains(name))
                {
                    throw new UsageException($"--kind: '{name}' is not one of {string.Join(", ", ApproximationComparison.Names)}");
                }
                kinds.Add(ApproximationComparison.Parse(name));
            }
            if (K < 1)
            {
                throw new UsageException($"--k: {K} is not a positive number of eigenvalues");
            }
            if (Probes < 2)
            {
                throw new UsageException($"--probes: {Probes} is too few (at least 2, for a standard error)");
            }
            if (MonteCarloSamples is < 1)
            {
                throw new UsageException($"--mc-samples: {MonteCarloSamples} is not a positive number of draws per row");
            }
            var kfac = MonteCarloSamples is { } m ? new Approximations.KfacOptions(Approximations.OutputCurvature.MonteCarlo, m, Seed) : null;
            return new ApproximationOptions(kinds.Distinct().ToArray(), CurvatureOptions.ParseAgainst(Against), K, FrobeniusProbes: Probes, Seed: Seed, Kfac: kfac);
        }
    }

    /// <inheritdoc/>
    protected internal override JsonTypeInfo<ApproxOutput> JsonType => LandscapeJsonContext.Default.ApproxOutput;

    /// <inheritdoc/>
    protected override Settings Bind(ParseResult result) => new()
    {
        Kind = result.GetValue(_kind)!,
        Against = result.GetValue(_against)!,
        K = result.GetValue(_k),
        Probes = result.GetValue(_probes),
        MonteCarloSamples = result.GetValue(_mcSamples),
    };

    /// <inheritdoc/>
    /// <remarks>K above n and a kind that does not apply to the model's layers are the library's to refuse (exit 2).</remarks>
    public override void Validate(Settings settings) => _ = settings.ToOptions();

    /// <inheritdoc/>
    protected override ApproxOutput Execute(CommandRun run, Settings settings)
    {
        var map = run.Problem;
        var options = settings.ToOptions();
        var report = run.Progress("approximations", limits => ApproximationComparison.Compute(map, options, limits));
        var set = run.Data;
        return new ApproxOutput(report, map.ParameterCount, set.Count, set.OutputDim, set.Source);
    }

    /// <inheritdoc/>
    protected override void Render(CliContext context, Settings settings, ApproxOutput result)
    {
        var r = result.Report;
        string G(double v) => v.ToString("G4", CultureInfo.InvariantCulture);
        string List(IEnumerable<double> values) => string.Join(", ", values.Select(G));
        var info = new Table().Title(Markup.Escape($"approximations of {r.Against}")).AddColumns("quantity", "value");
        void Row(string key, string value) => info.AddRow(Markup.Escape(key), Markup.Escape(value));
        Row("data", $"{result.Data}: d = {result.D}, ℓ = {result.Outputs}");
        Row("parameters n", result.N.ToString(CultureInfo.InvariantCulture));
        Row("exact", $"tr = {G(r.ExactTrace)}; top {r.K}: {List(r.Approximations.FirstOrDefault()?.ExactTopEigenvalues ?? [])}; {r.ExactProducts} products, {r.ExactSeconds.ToString("0.000", CultureInfo.InvariantCulture)} s");
        Row("how", r.Note);
        context.Console.Write(info);
        var table = new Table().AddColumns("kind", "‖A − G‖_F/‖G‖_F", "trace error", $"top {r.K} of A", "overlap", "time", "products");
        foreach (var a in r.Approximations)
        {
            string frobenius = a.FrobeniusErrorStdError > 0 ? $"{G(a.FrobeniusError)} ± {G(a.FrobeniusErrorStdError)}" : G(a.FrobeniusError);
            table.AddRow(new[]
            {
                a.Kind, frobenius, G(a.TraceError), List(a.TopEigenvalues),
                string.Create(CultureInfo.InvariantCulture, $"{a.SubspaceOverlap:0.###}/{r.K}"),
                string.Create(CultureInfo.InvariantCulture, $"{a.Seconds:0.000} s"), a.Products.ToString(CultureInfo.InvariantCulture),
            }.Select(Markup.Escape).ToArray());
        }
        context.Console.Write(table);
    }
}

/// <summary>The result of <c>landscape approx</c>, and its JSON: the library's <see cref="ApproximationReport"/> at its own level, and the data.</summary>
/// <param name="Report">The library's result, written in place (<see cref="JsonOutput.Inline"/>): <c>approximations</c> and the exact reference.</param>
/// <param name="N">Parameters n.</param>
/// <param name="D">Data rows d.</param>
/// <param name="Outputs">Targets per row ℓ.</param>
/// <param name="Data">The data source.</param>
internal sealed record ApproxOutput([property: JsonPropertyName(JsonOutput.Inline)] ApproximationReport Report, int N, int D, int Outputs, string Data);
