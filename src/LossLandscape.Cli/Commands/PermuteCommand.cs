using System.CommandLine;
using System.Globalization;
using System.Text.Json.Serialization.Metadata;
using LossLandscape.Models;
using LossLandscape.Paths;
using Spectre.Console;

namespace LossLandscape.Cli.Commands;

/// <summary>
/// <c>landscape permute --model A --seed S --out B [--json F]</c>: B = π(A) for a random permutation π of every hidden layer's
/// units, or of a sequential network's channels and units (<see cref="UnitPermutation.Random"/>, <see cref="UnitPermutation.Apply(NetworkPoint)"/>;
/// its batch norms' running statistics move with their channels). B computes the same function as A, so it is on M when A
/// is: two endpoints with a known answer for <c>connect --align weight-matching</c>.
/// </summary>
internal sealed class PermuteCommand : LandscapeCommand<PermuteCommand.Settings, PermuteOutput>
{
    private readonly Option<string> _output = new("--out") { Description = "the model file to write, π(A); not the --model file", Required = true };

    private PermuteCommand()
        : base("permute", "Write π(A): the model with every hidden layer's units (a sequential network's channels) randomly permuted, the same function (on M when A is).",
            SharedOptions.Model | SharedOptions.Seed | SharedOptions.Json, seedDescription: "seed of the permutation")
        => Add(_output);

    /// <summary>Builds the command.</summary>
    public static Command Create(CliContext context) => new PermuteCommand().Build(context);

    /// <summary>The settings of <c>permute</c>.</summary>
    internal sealed record Settings : LandscapeSettings
    {
        /// <summary><c>--out</c>: the model file to write.</summary>
        public string Out { get; init; } = "";
    }

    /// <inheritdoc/>
    protected internal override JsonTypeInfo<PermuteOutput> JsonType => LandscapeJsonContext.Default.PermuteOutput;

    /// <inheritdoc/>
    protected internal override IEnumerable<(string Option, string? Path)> OutputFiles(Settings settings) => [("--out", settings.Out)];

    /// <inheritdoc/>
    protected override Settings Bind(ParseResult result) => new() { Out = result.GetValue(_output)! };

    /// <inheritdoc/>
    public override void Validate(Settings settings)
    {
        if (settings.Model is { } path && TorchScriptNetwork.IsTorchScriptFile(path))
        {
            throw new UsageException($"--model: {path} is a TorchScript module: its layers are compiled code, not a list of layers, so which parameters belong to one unit cannot be read from it; permute takes losslandscape.mlp/1 and seq/1 networks");
        }
    }

    /// <inheritdoc/>
    protected override PermuteOutput Execute(CommandRun run, Settings settings)
    {
        var layers = UnitPermutation.PermutableLayers(run.Point.Network, "unit permutation (landscape permute)");
        var permutation = UnitPermutation.Random(run.Point.Network, settings.Seed);
        var permuted = permutation.Apply(run.Point);
        InitCommand.SaveModel(settings.Out, permuted);
        return new PermuteOutput(permuted.Network.ParameterCount, layers.Select(l => l.Width).ToArray(), layers.Select(l => l.Name).ToArray(), settings.Seed, run.ModelPath,
            settings.Out, permutation.Layers);
    }

    /// <inheritdoc/>
    protected override void Render(CliContext context, Settings settings, PermuteOutput result)
    {
        var table = new Table().AddColumns("layer", "width", "units moved", "π (first units)");
        for (int k = 0; k < result.Permutation.Count; k++)
        {
            var perm = result.Permutation[k];
            int moved = perm.Where((u, i) => u != i).Count();
            // A row of a few units is enough to see that the layer was shuffled; the JSON has all of them.
            const int Shown = 8;
            string head = string.Join(",", perm.Take(Shown)) + (perm.Length > Shown ? ",…" : "");
            table.AddRow(Markup.Escape(result.Names[k]), result.Layers[k].ToString(CultureInfo.InvariantCulture), moved.ToString(CultureInfo.InvariantCulture), head);
        }
        context.Console.Write(table);
        context.Console.MarkupLine(Markup.Escape($"wrote {result.Model} = π({result.Source}), n = {result.N}, seed {result.Seed}: the same function, on M when the source is"));
    }
}

/// <summary>The result of <c>landscape permute</c>, and its JSON.</summary>
/// <param name="N">Parameters n.</param>
/// <param name="Layers">The widths of the permutable layers, first first: an MLP's hidden widths, a sequential network's channels and units (<see cref="UnitPermutation.PermutableLayers"/>).</param>
/// <param name="Names">The permutable layers, e.g. <c>hidden layer 1</c> or <c>layer 1 conv:4:3:1:1</c>.</param>
/// <param name="Seed">The seed of π.</param>
/// <param name="Source">The model file A that was permuted.</param>
/// <param name="Model">The model file written, π(A).</param>
/// <param name="Permutation">π per permutable layer: unit i of π(A) is unit <c>Permutation[k][i]</c> of A (<see cref="UnitPermutation.Layers"/>).</param>
internal sealed record PermuteOutput(int N, IReadOnlyList<int> Layers, IReadOnlyList<string> Names, int Seed, string Source, string Model, IReadOnlyList<int[]> Permutation);
