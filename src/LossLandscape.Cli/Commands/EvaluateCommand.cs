using System.CommandLine;
using System.Globalization;
using System.Text.Json.Serialization.Metadata;
using LossLandscape.Data;
using LossLandscape.Engine;
using LossLandscape.Models;
using LossLandscape.Problem;
using Spectre.Console;

namespace LossLandscape.Cli.Commands;

/// <summary>
/// <c>landscape evaluate --model M --data D (--target|--one-hot) [--exponent a] [--json F]</c>:
/// the residual map at the model's point: L = Σ|H_k|^a, max |H_k|, ‖∇L‖.
/// </summary>
internal sealed class EvaluateCommand : LandscapeCommand<EvaluateCommand.Settings, EvaluateOutput>
{
    /// <summary>The squared loss, a = 2 (Section 2 of the paper).</summary>
    private const double SquaredLoss = 2.0;

    private readonly Option<double> _exponent = new("--exponent") { Description = "a ≥ 1 in L = Σ|H_k|^a (2: squared loss; 1: Remark 2.2)", DefaultValueFactory = _ => SquaredLoss };

    private EvaluateCommand()
        : base("evaluate", "Evaluate the residual map H, the loss L = Σ|H_k|^a and its gradient at a model's point.", SharedOptions.Model | SharedOptions.Data | SharedOptions.BatchSize | SharedOptions.Budget | SharedOptions.Cluster | SharedOptions.Json, batchSizeDescription: CurvatureOptions.BatchSizeDescription)
        => Add(_exponent);

    /// <summary>Builds the command.</summary>
    public static Command Create(CliContext context) => new EvaluateCommand().Build(context);

    /// <summary>The settings of <c>evaluate</c>.</summary>
    internal sealed record Settings : LandscapeSettings
    {
        /// <summary><c>--exponent a</c>: L = Σ|H_k|^a.</summary>
        public double Exponent { get; init; } = SquaredLoss;
    }

    /// <inheritdoc/>
    protected internal override JsonTypeInfo<EvaluateOutput> JsonType => LandscapeJsonContext.Default.EvaluateOutput;

    /// <inheritdoc/>
    public override void Validate(Settings settings)
    {
        if (!(settings.Exponent >= 1) || double.IsInfinity(settings.Exponent))
        {
            throw new UsageException($"--exponent: {settings.Exponent.ToString(CultureInfo.InvariantCulture)} is not a finite number ≥ 1");
        }
    }

    /// <inheritdoc/>
    protected override Settings Bind(ParseResult result) => new() { Exponent = result.GetValue(_exponent) };

    /// <inheritdoc/>
    protected override double LossExponent(Settings settings) => settings.Exponent;

    /// <inheritdoc/>
    protected override EvaluateOutput Execute(CommandRun run, Settings settings)
    {
        var problem = run.Problem;
        var set = run.Data;
        double loss = problem.Loss();
        double maxRes = problem.MaxAbsResidual();
        double gradNorm = NonFinite.Require(problem.Gradient().norm().item<double>(), "the gradient norm ‖∇L‖", "the reverse pass overflows float64 at this point");
        return new EvaluateOutput(problem.ParameterCount, set.Count, set.OutputDim, problem.Constraints, problem.Exponent, loss, maxRes, gradNorm, set.Source, set.InputDim, run.Seconds);
    }

    /// <inheritdoc/>
    protected override void Render(CliContext context, Settings settings, EvaluateOutput result)
    {
        static string F(double v) => v.ToString("G6", CultureInfo.InvariantCulture);
        var table = new Table().AddColumns("quantity", "value");
        table.AddRow("data", Markup.Escape($"{result.Data}: d = {result.D}, p = {result.Inputs}, ℓ = {result.Outputs}"));
        table.AddRow("parameters n", result.N.ToString(CultureInfo.InvariantCulture));
        table.AddRow("constraints ℓd", result.Constraints.ToString(CultureInfo.InvariantCulture));
        table.AddRow(double.IsNaN(result.Exponent) ? $"loss L ({settings.Loss})" : $"loss L (a = {F(result.Exponent)})", F(result.Loss));
        table.AddRow("max |H_k|", F(result.MaxAbsResidual));
        table.AddRow("‖∇L‖", F(result.GradientNorm));
        if (result.Cluster is { } cluster)
        {
            table.AddRow("cluster", Markup.Escape(string.Create(CultureInfo.InvariantCulture, $"{cluster.Shards} shards on {cluster.Workers} workers, {cluster.Retries} retried")));
        }
        context.Console.Write(table);
    }
}

/// <summary>The result of <c>landscape evaluate</c>, and its JSON.</summary>
/// <param name="N">Parameters n.</param>
/// <param name="D">Data rows d.</param>
/// <param name="Outputs">Targets per row ℓ.</param>
/// <param name="Constraints">ℓd, the number of equations H_k = 0.</param>
/// <param name="Exponent">a in L = Σ|H_k|^a.</param>
/// <param name="Loss">L at the point.</param>
/// <param name="MaxAbsResidual">max_k |H_k|.</param>
/// <param name="GradientNorm">‖∇L‖.</param>
/// <param name="Data">The data source.</param>
/// <param name="Inputs">Inputs per row p.</param>
/// <param name="Seconds">Wall time of the evaluation.</param>
internal sealed record EvaluateOutput(
    int N, int D, int Outputs, int Constraints, double Exponent, double Loss, double MaxAbsResidual, double GradientNorm, string Data, int Inputs, double Seconds)
    : ClusterReported<EvaluateOutput>;
