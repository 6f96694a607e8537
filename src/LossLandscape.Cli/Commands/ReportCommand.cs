using System.CommandLine;
using System.Text.Json;
using LossLandscape.Geometry;
using LossLandscape.Reports;
using Spectre.Console;

namespace LossLandscape.Cli.Commands;

/// <summary>
/// <c>landscape report --model M --data D (--target|--one-hot) --out DIR [--history train.json]</c>: one
/// self-contained page DIR/index.html with the certificate, the plots, the settings and the command.
/// </summary>
public static class ReportCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create(CliContext context)
    {
        var command = new Command("report", "Write one self-contained HTML page (DIR/index.html): certificate, spectrum, density, σ(J), tangent/normal slice, walk.");
        var model = CommonOptions.Model();
        command.Options.Add(model);
        var data = new CommonOptions.DataOptions(command);
        var output = new Option<string>("--out") { Description = "the directory to write index.html into", Required = true };
        var history = new Option<string?>("--history") { Description = "a training JSON (from landscape train --json) whose loss history to plot" };
        var grid = new Option<int>("--grid") { Description = "points per axis of the slice", DefaultValueFactory = _ => 31 };
        var seed = new Option<int>("--seed") { Description = "seed of the random draws", DefaultValueFactory = _ => 0 };
        var walkSteps = new Option<int>("--walk-steps") { Description = "steps of the walk on M (0: none)", DefaultValueFactory = _ => 10 };
        foreach (var o in new Option[] { output, history, grid, seed, walkSteps })
        {
            command.Options.Add(o);
        }
        command.SetAction(result =>
        {
            LandscapeApp.Initialize();
            var modelPath = result.GetValue(model)!;
            var point = CommonOptions.LoadModel(modelPath);
            var set = data.Load(result);
            var losses = result.GetValue(history) is { } h ? ReadHistory(h) : null;
            using var m = point.ToModel();
            using var map = new ResidualMap(m, set);
            var report = new HtmlReport($"Loss landscape of {Path.GetFileName(modelPath)}");
            report.Heading("Settings").Table(["setting", "value"],
            [
                ["model", modelPath], ["data", set.Source], ["d, p, ℓ", $"{set.Count}, {set.InputDim}, {set.OutputDim}"], ["n", point.Network.ParameterCount.ToString(System.Globalization.CultureInfo.InvariantCulture)],
                ["activations", string.Join(", ", point.Network.DistinctActivations.Select(a => a.Name))],
            ]);
            report.Heading("Command").Code(context.CommandLine);
            context.WithProgress("report", progress => LandscapeReport.Build(report, map, new ReportOptions(SliceGrid: result.GetValue(grid), WalkSteps: Math.Max(0, result.GetValue(walkSteps)), Seed: result.GetValue(seed)), losses, progress));
            var path = report.Save(result.GetValue(output)!);
            context.Console.MarkupLine(Markup.Escape($"wrote {path}"));
            return LandscapeApp.Success;
        });
        return command;
    }

    /// <summary>Reads <c>lossHistory</c> (an array of numbers) from a training JSON.</summary>
    public static double[] ReadHistory(string path)
    {
        if (!File.Exists(path))
        {
            throw new UsageException($"{path}: file not found");
        }
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(path));
            if (doc.RootElement.TryGetProperty("lossHistory", out var array) && array.ValueKind == JsonValueKind.Array)
            {
                return array.EnumerateArray().Select(e => e.GetDouble()).ToArray();
            }
        }
        catch (JsonException e)
        {
            throw new UsageException($"{path}: not JSON: {e.Message.ReplaceLineEndings(" ")}");
        }
        throw new UsageException($"{path}: no 'lossHistory' array (write one with landscape train --json)");
    }
}
