using System.CommandLine;
using LossLandscape.Models;
using Spectre.Console;

namespace LossLandscape.Cli.Commands;

/// <summary><c>landscape info --model FILE [--json F]</c>: n, the layers and the activations.</summary>
public static class InfoCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create(CliContext context)
    {
        var model = CommonOptions.Model();
        var json = CommonOptions.Json();
        var command = new Command("info", "Print a model file's architecture: n, the layers and the activations.") { model, json };
        command.SetAction(result =>
        {
            LandscapeApp.Initialize();
            var path = result.GetValue(model)!;
            var point = CommonOptions.LoadModel(path);
            Render(context, path, point);
            WriteJson(result.GetValue(json), path, point);
            return LandscapeApp.Success;
        });
        return command;
    }

    private static void Render(CliContext context, string path, NetworkPoint point)
    {
        var net = point.Network;
        var table = new Table().Title(Markup.Escape(path)).AddColumns("layer", "shape", "activation", "parameters");
        switch (net)
        {
            case Mlp mlp:
                int k = 0;
                foreach (var layer in mlp.Layers)
                {
                    bool output = layer.Activation is null;
                    table.AddRow(output ? "output" : $"hidden {++k}", $"{layer.Out} × {layer.In} + {layer.Out}", output ? "linear" : layer.Activation!.Name, layer.Count.ToString());
                }
                break;
            case DagNetwork dag:
                int hidden = dag.Vertices.Count(v => v.Kind == DagVertexKind.Hidden);
                table.AddRow("DAG", $"{hidden} hidden, {dag.OutputDim} output vertices, {dag.Edges.Count} edges, {dag.Depth} levels",
                    string.Join(", ", dag.DistinctActivations.Select(a => a.Name)), dag.ParameterCount.ToString());
                break;
        }
        context.Console.Write(table);
        context.Console.WriteLine($"format {(net is Mlp ? ModelFile.MlpFormat : ModelFile.DagFormat)}; inputs p = {net.InputDim}; outputs ℓ = {net.OutputDim}; parameters n = {net.ParameterCount}; input scaling: {(net.Scaling is null ? "none" : "stored (x − shift)/scale")}");
        var flags = net.DistinctActivations.Select(a => $"{a.Name}: {(a.IsRectified ? "rectified" : "not rectified")}, {(a.IsSmooth ? "smooth" : "not smooth")}");
        context.Console.WriteLine("activations: " + string.Join("; ", flags));
    }

    private static void WriteJson(string? file, string path, NetworkPoint point) => JsonOutput.Write(file, w =>
    {
        var net = point.Network;
        w.WriteString("model", path);
        w.WriteString("format", net is Mlp ? ModelFile.MlpFormat : ModelFile.DagFormat);
        w.WriteNumber("inputDim", net.InputDim);
        w.WriteNumber("outputDim", net.OutputDim);
        w.WriteNumber("n", net.ParameterCount);
        w.WriteBoolean("inputScaling", net.Scaling is not null);
        if (net is Mlp mlp)
        {
            w.WriteStartArray("layers");
            foreach (var layer in mlp.Layers)
            {
                w.WriteStartObject();
                w.WriteNumber("in", layer.In);
                w.WriteNumber("out", layer.Out);
                w.WriteString("activation", layer.Activation?.Name ?? "linear");
                w.WriteNumber("parameters", layer.Count);
                w.WriteEndObject();
            }
            w.WriteEndArray();
        }
        else if (net is DagNetwork dag)
        {
            w.WriteNumber("vertices", dag.Vertices.Count);
            w.WriteNumber("edges", dag.Edges.Count);
            w.WriteNumber("levels", dag.Depth);
        }
        w.WriteStartArray("activations");
        foreach (var a in net.DistinctActivations)
        {
            w.WriteStartObject();
            w.WriteString("name", a.Name);
            w.WriteBoolean("rectified", a.IsRectified);
            w.WriteBoolean("smooth", a.IsSmooth);
            w.WriteEndObject();
        }
        w.WriteEndArray();
    });
}
