using System.CommandLine;
using System.Text.Json.Serialization.Metadata;
using LossLandscape.Reports;
using Spectre.Console;

namespace LossLandscape.Cli.Commands;

/// <summary>
/// <c>landscape verify [--json F] [--report DIR]</c>: the main job. Runs every check on the embedded data and prints
/// a table of claim, setting, measured, expected and PASS/FAIL; exit code 1 if any check fails.
/// </summary>
internal sealed class VerifyCommand : LandscapeCommand<VerifyCommand.Settings, VerifyOutput>
{
    private readonly Option<string?> _report = new("--report") { Description = "also write DIR/index.html: the table of claims, the spectrum, a tangent-against-normal slice and the walk" };

    private VerifyCommand()
        : base("verify", "Check the paper's claims and the engine's foundations on the embedded data, and print a PASS/FAIL table.", SharedOptions.Json)
        => Add(_report);

    /// <summary>Builds the command.</summary>
    public static Command Create(CliContext context) => new VerifyCommand().Build(context);

    /// <summary>The settings of <c>verify</c>.</summary>
    internal sealed record Settings : LandscapeSettings
    {
        /// <summary><c>--report DIR</c>: also write the page of figures there.</summary>
        public string? Report { get; init; }
    }

    /// <inheritdoc/>
    protected internal override JsonTypeInfo<VerifyOutput> JsonType => LandscapeJsonContext.Default.VerifyOutput;

    /// <inheritdoc/>
    protected internal override IEnumerable<(string Option, string? Path)> OutputFiles(Settings settings) => [("--report", settings.Report is { } dir ? Path.Combine(dir, HtmlReport.PageName) : null)];

    /// <inheritdoc/>
    protected override Settings Bind(ParseResult result) => new() { Report = result.GetValue(_report) };

    /// <inheritdoc/>
    public override void Validate(Settings settings)
    {
        if (settings.Report is { } dir)
        {
            OutputDirectory.RequireWritable("--report", dir); // before the minutes of checks, not after them
        }
    }

    /// <inheritdoc/>
    protected override VerifyOutput Execute(CommandRun run, Settings settings)
    {
        var checks = run.Progress("verify", limits => PaperVerification.Run(limits));
        string? page = settings.Report is { } dir ? run.Progress("report", _ => WriteReport(dir, checks, run.Context.CommandLine)) : null;
        return new VerifyOutput(checks.All(c => c.Pass), checks, page, run.Seconds);
    }

    /// <inheritdoc/>
    protected override void Render(CliContext context, Settings settings, VerifyOutput result)
    {
        RenderTable(context, result.Claims);
        if (result.Report is { } page)
        {
            context.Console.MarkupLine(Markup.Escape($"wrote {page}"));
        }
    }

    /// <inheritdoc/>
    protected override int ExitCode(Settings settings, VerifyOutput result) => result.Pass ? LandscapeApp.Success : LandscapeApp.Failure;

    /// <summary>
    /// The verify page: the table of claims, then the figures at a point of M reached by Gauss–Newton on
    /// iris (every fifth row, one-hot ℓ = 3, width 40; n = 323, ℓd = 90), small enough for the dense spectrum.
    /// </summary>
    public static string WriteReport(string directory, IReadOnlyList<ClaimCheck> checks, string commandLine)
    {
        var report = new HtmlReport("LossLandscape: the claims of Cooper, “The loss landscape of overparameterized neural networks”");
        report.Paragraph($"{checks.Count(c => c.Pass)} of {checks.Count} checks passed. Every number below was measured by this run.");
        report.Heading("Claims");
        report.Table(["claim", "setting", "measured", "expected", "result"], checks.Select(c => (IReadOnlyList<string>)[c.Claim, c.Setting, c.Measured, c.Expected, c.Pass ? "PASS" : "FAIL"]));
        report.Heading("Command").Code(commandLine);
        var data = LossLandscape.Data.DatasetLoader.Load("builtin:iris", LossLandscape.Data.TargetSpec.Classes("species")).Subset(Enumerable.Range(0, 150).Where(i => i % 5 == 0));
        var (point, projection) = PaperVerification.TrainedPoint(data, 40, seed: 1);
        report.Heading("Settings of the figures").Table(["setting", "value"],
        [
            ["data", "builtin:iris, every fifth row (d = 30), species one-hot (ℓ = 3), inputs standardized in the model"],
            ["network", $"4-40-3 smoolu MLP, n = {point.Network.ParameterCount}"],
            ["point", $"He initialization (seed 1), then {projection.Steps} Gauss–Newton steps onto M (max|H| {projection.FinalMaxResidual:G3})"],
        ]);
        using var model = point.ToModel();
        using var map = new Problem.ResidualMap(model, data);
        LandscapeReport.Build(report, map, new ReportOptions());
        return report.Save(directory);
    }

    /// <summary>Prints the table of checks.</summary>
    public static void RenderTable(CliContext context, IReadOnlyList<ClaimCheck> checks)
    {
        var table = new Table().AddColumns("claim", "setting", "measured", "expected", "result", "s");
        foreach (var c in checks)
        {
            table.AddRow(Markup.Escape(c.Claim), Markup.Escape(c.Setting), Markup.Escape(c.Measured), Markup.Escape(c.Expected),
                c.Pass ? "[green]PASS[/]" : "[red]FAIL[/]", c.Seconds.ToString("0.0", System.Globalization.CultureInfo.InvariantCulture));
        }
        context.Console.Write(table);
        int failed = checks.Count(c => !c.Pass);
        context.Console.MarkupLine(failed == 0 ? $"[green]all {checks.Count} checks passed[/]" : $"[red]{failed} of {checks.Count} checks failed[/]");
    }
}

/// <summary>The result of <c>landscape verify</c>, and its JSON.</summary>
/// <param name="Pass">Whether every check passed (exit code 0, else 1).</param>
/// <param name="Claims">The checks, in the order they ran (the library's <see cref="ClaimCheck"/>, whose names are the JSON's).</param>
/// <param name="Report">The page written with <c>--report</c>, if any.</param>
/// <param name="Seconds">Wall time of all the checks (and the page).</param>
internal sealed record VerifyOutput(
    bool Pass,
    IReadOnlyList<ClaimCheck> Claims,
    string? Report,
    double Seconds);
