using System.CommandLine;
using System.Globalization;
using LossLandscape.Data;
using LossLandscape.Models;
using LossLandscape.Models.Activations;
using Spectre.Console;

namespace LossLandscape.Cli.Commands;

/// <summary>
/// <c>landscape init --data D (--target|--one-hot) --hidden 64,64 [--activation A] [--seed S] [--standardize] --out model.json</c>:
/// a randomly initialized MLP sized for the data (He initialization, see <see cref="Mlp.InitialParameters"/>).
/// </summary>
public static class InitCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create(CliContext context)
    {
        var command = new Command("init", "Write a randomly initialized MLP sized for the data (inputs p, outputs ℓ).");
        var data = new CommonOptions.DataOptions(command);
        var standardize = CommonOptions.Standardize();
        var hidden = new Option<string>("--hidden") { Description = "hidden widths, comma-separated, e.g. 64,64", DefaultValueFactory = _ => "16" };
        var activation = new Option<string>("--activation") { Description = $"one of {string.Join(", ", ActivationRegistry.Names)}", DefaultValueFactory = _ => "smoolu" };
        var seed = new Option<int>("--seed") { Description = "seed of the initialization", DefaultValueFactory = _ => 0 };
        var output = new Option<string>("--out") { Description = "the model file to write", Required = true };
        command.Options.Add(standardize);
        command.Options.Add(hidden);
        command.Options.Add(activation);
        command.Options.Add(seed);
        command.Options.Add(output);
        command.SetAction(result =>
        {
            LandscapeApp.Initialize();
            var set = data.Load(result);
            var sigma = ParseActivation(result.GetValue(activation)!);
            var widths = ParseWidths(result.GetValue(hidden)!);
            var mlp = new Mlp(set.InputDim, widths.Select(w => new HiddenLayer(w, sigma)).ToArray(), set.OutputDim);
            if (result.GetValue(standardize))
            {
                mlp = mlp.WithScaling(InputScaling.Standardize(set));
            }
            var path = result.GetValue(output)!;
            SaveModel(path, new NetworkPoint(mlp, mlp.InitialParameters(result.GetValue(seed))));
            context.Console.WriteLine($"wrote {path}: p = {mlp.InputDim}, widths {string.Join(",", widths)}, ℓ = {mlp.OutputDim}, n = {mlp.ParameterCount} ({set.Source}, d = {set.Count})");
            return LandscapeApp.Success;
        });
        return command;
    }

    /// <summary>Parses <c>64,64</c> into widths; a bad list is a usage error.</summary>
    public static int[] ParseWidths(string text)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries);
        var widths = new int[parts.Length];
        for (int k = 0; k < parts.Length; k++)
        {
            if (!int.TryParse(parts[k], NumberStyles.Integer, CultureInfo.InvariantCulture, out widths[k]) || widths[k] < 1)
            {
                throw new UsageException($"--hidden: '{parts[k]}' is not a positive width (expected e.g. 64,64)");
            }
        }
        return widths;
    }

    /// <summary>Looks an activation up; an unknown name is a usage error listing the known ones.</summary>
    public static Activation ParseActivation(string name) =>
        ActivationRegistry.TryGet(name, out var a) ? a! : throw new UsageException($"--activation: unknown activation '{name}'; expected one of: {string.Join(", ", ActivationRegistry.Names)}");

    /// <summary>Saves a model, turning I/O failures into usage errors.</summary>
    public static void SaveModel(string path, NetworkPoint point)
    {
        try
        {
            ModelFile.Save(path, point);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UsageException($"{path}: cannot write: {e.Message}");
        }
    }
}
