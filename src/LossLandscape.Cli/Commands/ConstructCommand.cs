using System.CommandLine;
using System.Globalization;
using LossLandscape.Construction;
using LossLandscape.Data;
using LossLandscape.Models;
using Spectre.Console;

namespace LossLandscape.Cli.Commands;

/// <summary>
/// <c>landscape construct --data D (--target|--one-hot) [--standardize] [--activation A] [--hidden H] [--depth T] [--dedupe] --out model.json [--json F]</c>:
/// zero training error by the construction of Lemma 3.3 / Corollary 3.4 / Remark 4.2, polished onto M.
/// </summary>
public static class ConstructCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create(CliContext context)
    {
        var command = new Command("construct", "Build a network that fits the data exactly (Lemma 3.3, Corollary 3.4, Remark 4.2) and polish it onto M.");
        var data = new CommonOptions.DataOptions(command);
        var standardize = CommonOptions.Standardize();
        var activation = new Option<string>("--activation") { Description = "a rectified activation: smoolu, relu, rectified-tanh, rectified-sigmoid", DefaultValueFactory = _ => "smoolu" };
        var hidden = new Option<string?>("--hidden") { Description = "width of the last hidden layer (default d), or all widths h1,...,hT" };
        var depth = new Option<int?>("--depth") { Description = "number of hidden layers T (default 1)" };
        var seed = new Option<int>("--seed") { Description = "seed of the random candidate directions", DefaultValueFactory = _ => 0 };
        var output = new Option<string>("--out") { Description = "the model file to write", Required = true };
        var json = CommonOptions.Json();
        foreach (var o in new Option[] { standardize, activation, hidden, depth, seed, output, json })
        {
            command.Options.Add(o);
        }
        command.SetAction(result =>
        {
            LandscapeApp.Initialize();
            var set = data.Load(result);
            var sigma = InitCommand.ParseActivation(result.GetValue(activation)!);
            var widths = Widths(result.GetValue(hidden), result.GetValue(depth), set.Count);
            var options = new ConstructionOptions(sigma, widths, result.GetValue(standardize) ? InputScaling.Standardize(set) : null, result.GetValue(seed));
            var built = context.WithProgress("construct", _ => Lemma33Interpolation.Construct(set, options));
            var path = result.GetValue(output)!;
            InitCommand.SaveModel(path, built.Point);
            Render(context, set, built, path);
            JsonOutput.Write(result.GetValue(json), w => WriteJson(w, set, built, path));
            return built.Diagnostics.MeetsGoal ? LandscapeApp.Success : LandscapeApp.Failure;
        });
        return command;
    }

    /// <summary>Hidden widths from <c>--hidden</c> and <c>--depth</c>.</summary>
    public static int[] Widths(string? hidden, int? depth, int d)
    {
        if (depth is < 1)
        {
            throw new UsageException($"--depth: {depth} is not a positive number of hidden layers");
        }
        var widths = hidden is null ? [d] : InitCommand.ParseWidths(hidden);
        if (widths.Length == 1)
        {
            return Enumerable.Repeat(widths[0], depth ?? 1).ToArray();
        }
        if (depth is { } t && t != widths.Length)
        {
            throw new UsageException($"--hidden lists {widths.Length} widths but --depth is {t}");
        }
        return widths;
    }

    private static void Render(CliContext context, Dataset set, ConstructionResult built, string path)
    {
        var g = built.Diagnostics;
        var net = (Mlp)built.Point.Network;
        string F(double v) => v.ToString("G4", CultureInfo.InvariantCulture);
        var table = new Table().AddColumns("quantity", "value");
        table.AddRow("data", Markup.Escape($"{set.Source}: d = {set.Count}, p = {set.InputDim}, ℓ = {set.OutputDim}"));
        table.AddRow("network", Markup.Escape($"widths {string.Join(",", net.Hidden.Select(h => h.Width))}, {net.Hidden[0].Activation.Name}, n = {net.ParameterCount}"));
        table.AddRow("direction a", Markup.Escape($"{g.Direction}; min gap / range {F(g.RelativeMinGap)}"));
        table.AddRow("scale", Markup.Escape($"α·min gap = {F(g.ScaledMinGap)}, α·range = {F(g.ScaledRange)}, θ = {F(g.BiasFraction)} ({g.Candidates} candidates)"));
        table.AddRow("conditioning", Markup.Escape($"κ₁(A) = {F(g.TriangularCondition)}, cancellation Σ|A||V|/max(1,|y|) = {F(g.Amplification)}"));
        table.AddRow("residual after triangular solve", F(g.TriangularResidual));
        table.AddRow("Gauss–Newton steps", Markup.Escape($"{g.OutputLayerSteps} on the output layer, {g.FullSteps} full" + (g.FullStepsSkipped is null ? "" : $" ({g.FullStepsSkipped})")));
        table.AddRow("max |f(xᵢ) − yᵢ|", $"{F(g.MaxResidual)} (goal ≤ {F(g.Goal)}: {(g.MeetsGoal ? "[green]met[/]" : "[red]not met[/]")})");
        table.AddRow("wrote", Markup.Escape(path));
        context.Console.Write(table);
        int copies = Lemma33Interpolation.CopiesFor(set);
        if (!g.MeetsGoal && copies > 1 && net.Hidden.Count == 1 && net.Hidden[0].Width < copies * set.Count)
        {
            context.Console.MarkupLine(Markup.Escape($"hint: the residual is at the float64 floor of one projection direction (ε × cancellation); with --hidden {copies * set.Count} (= {copies}·d) Remark 4.2's {copies} copies each get their own direction, with far less cancellation"));
        }
    }

    private static void WriteJson(System.Text.Json.Utf8JsonWriter w, Dataset set, ConstructionResult built, string path)
    {
        var g = built.Diagnostics;
        w.WriteString("model", path);
        w.WriteString("data", set.Source);
        w.WriteNumber("d", set.Count);
        w.WriteNumber("outputs", set.OutputDim);
        w.WriteNumber("n", built.Point.Network.ParameterCount);
        w.WriteString("direction", g.Direction);
        w.WriteNumber("relativeMinGap", g.RelativeMinGap);
        w.WriteNumber("scaledMinGap", g.ScaledMinGap);
        w.WriteNumber("scaledRange", g.ScaledRange);
        w.WriteNumber("biasFraction", g.BiasFraction);
        w.WriteNumber("triangularCondition", g.TriangularCondition);
        w.WriteNumber("amplification", g.Amplification);
        w.WriteNumber("triangularResidual", g.TriangularResidual);
        w.WriteNumber("outputLayerSteps", g.OutputLayerSteps);
        w.WriteNumber("gaussNewtonSteps", g.FullSteps);
        w.WriteNumber("maxAbsResidual", g.MaxResidual);
        w.WriteNumber("goal", g.Goal);
        w.WriteBoolean("meetsGoal", g.MeetsGoal);
        w.WriteNumber("seconds", g.Seconds);
    }
}
