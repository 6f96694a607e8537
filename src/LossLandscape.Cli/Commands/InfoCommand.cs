using System.CommandLine;
using System.Globalization;
using System.Text.Json.Serialization.Metadata;
using LossLandscape.Models;
using Spectre.Console;

namespace LossLandscape.Cli.Commands;

/// <summary><c>landscape info --model FILE [--json F]</c>: n, the layers and the activations.</summary>
internal sealed class InfoCommand : LandscapeCommand<InfoCommand.Settings, InfoOutput>
{
    private InfoCommand()
        : base("info", "Print a model file's architecture: n, the layers and the activations.", SharedOptions.Model | SharedOptions.Json)
    {
    }

    /// <summary>Builds the command.</summary>
    public static Command Create(CliContext context) => new InfoCommand().Build(context);

    /// <summary>info takes only the shared <c>--model</c> and <c>--json</c>.</summary>
    internal sealed record Settings : LandscapeSettings;

    /// <inheritdoc/>
    protected internal override JsonTypeInfo<InfoOutput> JsonType => LandscapeJsonContext.Default.InfoOutput;

    /// <inheritdoc/>
    protected override Settings Bind(ParseResult result) => new();

    /// <inheritdoc/>
    protected override InfoOutput Execute(CommandRun run, Settings settings) => InfoOutput.Of(run.ModelPath, run.Point.Network);

    /// <inheritdoc/>
    protected override void Render(CliContext context, Settings settings, InfoOutput result)
    {
        var table = new Table().Title(Markup.Escape(result.Model)).AddColumns("layer", "shape", "activation", "parameters");
        if (result.Layers is { } layers)
        {
            for (int k = 0; k < layers.Count; k++)
            {
                var layer = layers[k];
                bool output = k == layers.Count - 1;
                table.AddRow(output ? "output" : $"hidden {k + 1}", $"{layer.Out} × {layer.In} + {layer.Out}", layer.Activation, layer.Parameters.ToString(CultureInfo.InvariantCulture));
            }
        }
        else
        {
            table.AddRow("DAG", $"{result.HiddenVertices} hidden, {result.OutputDim} output vertices, {result.Edges} edges, {result.Levels} levels",
                string.Join(", ", result.Activations.Select(a => a.Name)), result.N.ToString(CultureInfo.InvariantCulture));
        }
        context.Console.Write(table);
        context.Console.WriteLine($"format {result.Format}; inputs p = {result.InputDim}; outputs ℓ = {result.OutputDim}; parameters n = {result.N}; input scaling: {(result.InputScaling ? "stored (x − shift)/scale" : "none")}");
        var flags = result.Activations.Select(a => $"{a.Name}: {(a.Rectified ? "rectified" : "not rectified")}, {(a.Smooth ? "smooth" : "not smooth")}");
        context.Console.WriteLine("activations: " + string.Join("; ", flags));
    }
}

/// <summary>The result of <c>landscape info</c>, and its JSON.</summary>
/// <param name="Model">The model file.</param>
/// <param name="Format">Its format, <see cref="ModelFile.MlpFormat"/> or <see cref="ModelFile.DagFormat"/>.</param>
/// <param name="InputDim">Inputs p.</param>
/// <param name="OutputDim">Outputs ℓ.</param>
/// <param name="N">Parameters n.</param>
/// <param name="InputScaling">Whether the file stores an input scaling (x − shift)/scale.</param>
/// <param name="Layers">An MLP's layers, first hidden layer first, the output layer last (absent for a DAG).</param>
/// <param name="HiddenVertices">A DAG's hidden vertices (absent for an MLP).</param>
/// <param name="Vertices">A DAG's hidden and output vertices (absent for an MLP).</param>
/// <param name="Edges">A DAG's edges (absent for an MLP).</param>
/// <param name="Levels">A DAG's depth in levels (absent for an MLP).</param>
/// <param name="Activations">The distinct activations and their flags.</param>
internal sealed record InfoOutput(
    string Model,
    string Format,
    int InputDim,
    int OutputDim,
    int N,
    bool InputScaling,
    IReadOnlyList<InfoLayer>? Layers,
    int? HiddenVertices,
    int? Vertices,
    int? Edges,
    int? Levels,
    IReadOnlyList<InfoActivation> Activations)
{
    /// <summary>The architecture of <paramref name="network"/>, read from <paramref name="path"/>.</summary>
    public static InfoOutput Of(string path, FeedforwardNetwork network)
    {
        var mlp = network as Mlp;
        var dag = network as DagNetwork;
        return new InfoOutput(
            path,
            mlp is not null ? ModelFile.MlpFormat : ModelFile.DagFormat,
            network.InputDim,
            network.OutputDim,
            network.ParameterCount,
            network.Scaling is not null,
            mlp?.Layers.Select(l => new InfoLayer(l.In, l.Out, l.Activation?.Name ?? "linear", l.Count)).ToArray(),
            dag?.Vertices.Count(v => v.Kind == DagVertexKind.Hidden),
            dag?.Vertices.Count,
            dag?.Edges.Count,
            dag?.Depth,
            network.DistinctActivations.Select(a => new InfoActivation(a.Name, a.IsRectified, a.IsSmooth)).ToArray());
    }
}

/// <summary>One layer of an MLP: W is <paramref name="Out"/> × <paramref name="In"/>, plus a bias.</summary>
/// <param name="In">Inputs of the layer.</param>
/// <param name="Out">Outputs of the layer.</param>
/// <param name="Activation">Its activation's name; <c>linear</c> for the output layer.</param>
/// <param name="Parameters">Out·In + Out.</param>
internal sealed record InfoLayer(int In, int Out, string Activation, int Parameters);

/// <summary>An activation and the flags the paper's theorems need.</summary>
/// <param name="Name">Its name in model files.</param>
/// <param name="Rectified">Definition 3.1 (needed by the construction of Lemma 3.3).</param>
/// <param name="Smooth">C^∞, so that M is a smooth manifold (Theorem 2.1).</param>
internal sealed record InfoActivation(string Name, bool Rectified, bool Smooth);
