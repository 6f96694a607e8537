using System.CommandLine;
using System.Globalization;
using System.Text.Json.Serialization.Metadata;
using LossLandscape.Models;
using Spectre.Console;

namespace LossLandscape.Cli.Commands;

/// <summary><c>landscape info --model FILE [--json F]</c>: n, the layers and the activations.</summary>
internal sealed class InfoCommand : LandscapeCommand<InfoCommand.Settings, InfoOutput>
{
    private readonly Option<string?> _inputShape = new("--input-shape")
    {
        Description = "for a TorchScript model: the shape of one input row, e.g. 1,28,28 (TorchScript does not record it; the outputs ℓ are read from one forward pass)",
    };

    private InfoCommand()
        : base("info", "Print a model file's architecture: n, the layers and the activations.", SharedOptions.Model | SharedOptions.Json)
        => Add(_inputShape);

    /// <summary>Builds the command.</summary>
    public static Command Create(CliContext context) => new InfoCommand().Build(context);

    /// <summary>info takes the shared <c>--model</c> and <c>--json</c>, and <c>--input-shape</c> for a TorchScript model.</summary>
    internal sealed record Settings : LandscapeSettings
    {
        /// <summary><c>--input-shape</c>, or null.</summary>
        public string? InputShape { get; init; }
    }

    /// <inheritdoc/>
    protected internal override JsonTypeInfo<InfoOutput> JsonType => LandscapeJsonContext.Default.InfoOutput;

    /// <inheritdoc/>
    protected override Settings Bind(ParseResult result) => new() { InputShape = result.GetValue(_inputShape) };

    /// <inheritdoc/>
    public override void Validate(Settings settings)
    {
        if (settings.InputShape is { } shape)
        {
            _ = ParseShape(shape);
        }
    }

    /// <inheritdoc/>
    protected override IReadOnlyList<long>? ModelInputShape(Settings settings) => settings.InputShape is { } shape ? ParseShape(shape) : null;

    private static long[] ParseShape(string shape)
    {
        try
        {
            return Data.DataView.ParseShape(shape);
        }
        catch (LandscapeInputException e)
        {
            throw new UsageException($"--input-shape: {e.Message}");
        }
    }

    /// <inheritdoc/>
    protected override InfoOutput Execute(CommandRun run, Settings settings) => InfoOutput.Of(run.ModelPath, run.Point.Network);

    /// <inheritdoc/>
    protected override void Render(CliContext context, Settings settings, InfoOutput result)
    {
        var table = new Table().Title(Markup.Escape(result.Model));
        if (result.Parameters is { } named)
        {
            table.AddColumns("parameter", "shape", "saved as", "values");
            foreach (var p in named)
            {
                table.AddRow(Markup.Escape(p.Name), Markup.Escape(Shape(p.Shape)), p.SavedType, p.Count.ToString(CultureInfo.InvariantCulture));
            }
        }
        else if (result.Sequence is { } sequence)
        {
            table.AddColumns("#", "layer", "output shape", "parameters");
            table.AddRow("", "input", Markup.Escape(Shape(result.InputShape!)), "");
            for (int k = 0; k < sequence.Count; k++)
            {
                var layer = sequence[k];
                table.AddRow((k + 1).ToString(CultureInfo.InvariantCulture), Markup.Escape(layer.Layer), Markup.Escape(Shape(layer.OutputShape)), layer.Parameters.ToString(CultureInfo.InvariantCulture));
            }
        }
        else if (result.Layers is { } layers)
        {
            table.AddColumns("layer", "shape", "activation", "parameters");
            for (int k = 0; k < layers.Count; k++)
            {
                var layer = layers[k];
                bool output = k == layers.Count - 1;
                table.AddRow(output ? "output" : $"hidden {k + 1}", $"{layer.Out} × {layer.In} + {layer.Out}", layer.Activation, layer.Parameters.ToString(CultureInfo.InvariantCulture));
            }
        }
        else
        {
            table.AddColumns("layer", "shape", "activation", "parameters");
            table.AddRow("DAG", $"{result.HiddenVertices} hidden, {result.OutputDim} output vertices, {result.Edges} edges, {result.Levels} levels",
                string.Join(", ", result.Activations.Select(a => a.Name)), result.N.ToString(CultureInfo.InvariantCulture));
        }
        context.Console.Write(table);
        context.Console.WriteLine($"format {result.Format}; inputs p = {result.InputDim}{(result.InputShape is { } shape ? $" as [{string.Join(", ", shape)}]" : "")}; outputs ℓ = {result.OutputDim}; parameters n = {result.N}; input scaling: {(result.InputScaling ? "stored (x − shift)/scale" : "none")}");
        var flags = result.Activations.Select(a => $"{a.Name}: {(a.Rectified ? "rectified" : "not rectified")}, {(a.Smooth ? "smooth" : "not smooth")}");
        context.Console.WriteLine("activations: " + (flags.Any() ? string.Join("; ", flags) : "none"));
    }

    /// <summary>A row's shape as people write it, e.g. 16 × 8 × 8.</summary>
    private static string Shape(IReadOnlyList<long> shape) => string.Join(" × ", shape.Select(s => s.ToString(CultureInfo.InvariantCulture)));
}

/// <summary>The result of <c>landscape info</c>, and its JSON.</summary>
/// <param name="Model">The model file.</param>
/// <param name="Format">Its format, <see cref="ModelFile.MlpFormat"/>, <see cref="ModelFile.DagFormat"/> or <see cref="ModelFile.SeqFormat"/>.</param>
/// <param name="InputDim">Inputs p.</param>
/// <param name="OutputDim">Outputs ℓ.</param>
/// <param name="N">Parameters n.</param>
/// <param name="InputScaling">Whether the file stores an input scaling (x − shift)/scale.</param>
/// <param name="Layers">An MLP's layers, first hidden layer first, the output layer last (absent for a DAG and a sequential network).</param>
/// <param name="HiddenVertices">A DAG's hidden vertices (absent for an MLP).</param>
/// <param name="Vertices">A DAG's hidden and output vertices (absent for an MLP).</param>
/// <param name="Edges">A DAG's edges (absent for an MLP).</param>
/// <param name="Levels">A DAG's depth in levels (absent for an MLP).</param>
/// <param name="Activations">The distinct activations and their flags.</param>
/// <param name="InputShape">A sequential network's input row shape (absent for an MLP and a DAG).</param>
/// <param name="Sequence">A sequential network's layers, first first, with their output shapes and parameters (absent for an MLP and a DAG).</param>
/// <param name="Parameters">A TorchScript module's parameter tensors, in <c>named_parameters()</c> order (absent otherwise).</param>
/// <param name="Evaluation">For a TorchScript module, how it is evaluated (eval mode, its buffers fixed, the compute type).</param>
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
    IReadOnlyList<InfoActivation> Activations,
    IReadOnlyList<long>? InputShape = null,
    IReadOnlyList<InfoSequenceLayer>? Sequence = null,
    IReadOnlyList<InfoParameter>? Parameters = null,
    string? Evaluation = null)
{
    /// <summary>The architecture of <paramref name="network"/>, read from <paramref name="path"/>.</summary>
    public static InfoOutput Of(string path, FeedforwardNetwork network)
    {
        var mlp = network as Mlp;
        var dag = network as DagNetwork;
        var seq = network as SequentialNetwork;
        var script = network as TorchScriptNetwork;
        return new InfoOutput(
            path,
            ModelFile.FormatOf(network),
            network.InputDim,
            network.OutputDim,
            network.ParameterCount,
            network.Scaling is not null,
            mlp?.Layers.Select(l => new InfoLayer(l.In, l.Out, l.Activation?.Name ?? "linear", l.Count)).ToArray(),
            dag?.Vertices.Count(v => v.Kind == DagVertexKind.Hidden),
            dag?.Vertices.Count,
            dag?.Edges.Count,
            dag?.Depth,
            network.DistinctActivations.Select(a => new InfoActivation(a.Name, a.IsRectified, a.IsSmooth)).ToArray(),
            seq?.InputShape ?? script?.InputShape,
            seq?.Layers.Select(l => new InfoSequenceLayer(Describe(l), l.Layer.Type, l.OutputShape, l.Count)).ToArray(),
            script?.Parameters.Select(p => new InfoParameter(p.Name, p.Shape, p.SavedType.ToString().ToLowerInvariant(), p.Count)).ToArray(),
            script?.Describe());
    }

    /// <summary>A sequential network's layer in words: its type and sizes, e.g. <c>conv2d 1 → 16, 3 × 3, stride 1, padding 1</c>.</summary>
    private static string Describe(SequentialSlice layer)
    {
        string I(long v) => v.ToString(CultureInfo.InvariantCulture);
        return layer.Layer switch
        {
            Conv2dLayer c => $"conv2d {I(layer.InputShape[0])} → {I(c.Out)}, {I(c.Kernel)} × {I(c.Kernel)}, stride {I(c.Stride)}, padding {I(c.Padding)}",
            MaxPool2dLayer m => $"max pool {I(m.Kernel)} × {I(m.Kernel)}, stride {I(m.Stride)}",
            AvgPool2dLayer a => $"average pool {I(a.Kernel)} × {I(a.Kernel)}, stride {I(a.Stride)}",
            BatchNormLayer b => $"batch norm {(layer.InputShape.Count == 3 ? "2d" : "1d")} ({I(layer.InputShape[0])} {(layer.InputShape.Count == 3 ? "channels" : "features")}, eval mode, ε = {b.Eps.ToString("0.##########E+0", CultureInfo.InvariantCulture)})",
            FlattenLayer => "flatten",
            LinearLayer l => $"linear {I(layer.InputShape[0])} → {I(l.Out)}",
            ActivationLayer f => f.Activation.Name,
            _ => layer.Layer.Type,
        };
    }
}

/// <summary>One layer of an MLP: W is <paramref name="Out"/> × <paramref name="In"/>, plus a bias.</summary>
/// <param name="In">Inputs of the layer.</param>
/// <param name="Out">Outputs of the layer.</param>
/// <param name="Activation">Its activation's name; <c>linear</c> for the output layer.</param>
/// <param name="Parameters">Out·In + Out.</param>
internal sealed record InfoLayer(int In, int Out, string Activation, int Parameters);

/// <summary>One layer of a sequential network (<see cref="SequentialNetwork"/>).</summary>
/// <param name="Layer">The layer in words, with its sizes.</param>
/// <param name="Type">Its type in the model file.</param>
/// <param name="OutputShape">The shape of one row after it.</param>
/// <param name="Parameters">Its parameters.</param>
internal sealed record InfoSequenceLayer(string Layer, string Type, IReadOnlyList<long> OutputShape, int Parameters);

/// <summary>One parameter tensor of a TorchScript module, in <c>named_parameters()</c> order.</summary>
/// <param name="Name">Its dotted name, e.g. <c>conv1.weight</c>.</param>
/// <param name="Shape">Its shape.</param>
/// <param name="SavedType">Its element type in the file (float32, float64).</param>
/// <param name="Count">Its number of values.</param>
internal sealed record InfoParameter(string Name, IReadOnlyList<long> Shape, string SavedType, long Count);

/// <summary>An activation and the flags the paper's theorems need.</summary>
/// <param name="Name">Its name in model files.</param>
/// <param name="Rectified">Definition 3.1 (needed by the construction of Lemma 3.3).</param>
/// <param name="Smooth">C^∞, so that M is a smooth manifold (Theorem 2.1).</param>
internal sealed record InfoActivation(string Name, bool Rectified, bool Smooth);
