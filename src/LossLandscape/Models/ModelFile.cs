using LossLandscape.Engine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using LossLandscape.Data;
using LossLandscape.Models.Activations;

namespace LossLandscape.Models;

/// <summary>A network together with a point p ∈ ℝⁿ: what a model file holds.</summary>
/// <param name="Network">The architecture (and its input scaling).</param>
/// <param name="Parameters">p, of length n.</param>
public sealed record NetworkPoint(FeedforwardNetwork Network, double[] Parameters)
{
    /// <summary>The point as an <see cref="IDifferentiableModel"/> (one autograd leaf holding a copy of p).</summary>
    public NetworkModel ToModel() => new(Network, Parameters);
}

/// <summary>A model file that cannot be read: the message is one line naming the file and the fault.</summary>
public sealed class ModelFormatException : Exception
{
    /// <summary>Creates the exception.</summary>
    public ModelFormatException(string message, Exception? inner = null) : base(message, inner)
    {
    }
}

/// <summary>
/// Model files: JSON with an exact float64 round trip (numbers are written in the shortest form
/// that parses back to the same double).
/// </summary>
/// <remarks>
/// <para><c>losslandscape.mlp/1</c>, read by other tools, has exactly this shape:</para>
/// <code>
/// {"format":"losslandscape.mlp/1","inputDim":p,
///  "hidden":[{"width":h1,"activation":"smoolu"}, ...],
///  "outputDim":l,
///  "input":{"shift":[...],"scale":[...]},      (optional; the network sees (x − shift)/scale)
///  "parameters":[ ... n numbers ... ]}
/// </code>
/// <para>Parameters are stored layer by layer, first hidden layer first, each layer W (out × in, row-major)
/// then b (out); hidden layers compute σ(W a + b), the output layer W a + b.</para>
/// <para><c>losslandscape.dag/1</c> stores a <see cref="DagNetwork"/>:</para>
/// <code>
/// {"format":"losslandscape.dag/1","inputDim":p,"parameterCount":m,
///  "vertices":[{"kind":"hidden","bias":k,"activation":"smoolu"},{"kind":"output","bias":null}, ...],
///  "edges":[{"from":u,"to":v,"parameter":k}, ...],
///  "input":{"shift":[...],"scale":[...]},      (optional)
///  "parameters":[ ... m numbers ... ]}
/// </code>
/// <para>Vertex ids 0..p−1 are the inputs, vertex p + k is <c>vertices[k]</c>; the outputs, in list order,
/// are f's coordinates; a label may repeat (shared parameters); <c>bias</c> may be null (no bias).</para>
/// </remarks>
public static class ModelFile
{
    /// <summary>The format tag of layered networks.</summary>
    public const string MlpFormat = "losslandscape.mlp/1";

    /// <summary>The format tag of DAG networks.</summary>
    public const string DagFormat = "losslandscape.dag/1";

    /// <summary>Writes <paramref name="point"/> to <paramref name="path"/>.</summary>
    public static void Save(string path, NetworkPoint point)
    {
        ArgumentNullException.ThrowIfNull(point);
        Engine.AtomicFile.WriteAllText(path, Serialize(point));
    }

    /// <summary>The JSON text of <paramref name="point"/>.</summary>
    public static string Serialize(NetworkPoint point)
    {
        ArgumentNullException.ThrowIfNull(point);
        if (point.Parameters.Length != point.Network.ParameterCount)
        {
            throw new LandscapeInputException($"{point.Parameters.Length} parameters for a network with n = {point.Network.ParameterCount}");
        }
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            switch (point.Network)
            {
                case Mlp mlp:
                    w.WriteString("format", MlpFormat);
                    w.WriteNumber("inputDim", mlp.InputDim);
                    w.WriteStartArray("hidden");
                    foreach (var h in mlp.Hidden)
                    {
                        w.WriteStartObject();
                        w.WriteNumber("width", h.Width);
                        w.WriteString("activation", h.Activation.Name);
                        w.WriteEndObject();
                    }
                    w.WriteEndArray();
                    w.WriteNumber("outputDim", mlp.OutputDim);
                    break;
                case DagNetwork dag:
                    w.WriteString("format", DagFormat);
                    w.WriteNumber("inputDim", dag.InputDim);
                    w.WriteNumber("parameterCount", dag.ParameterCount);
                    w.WriteStartArray("vertices");
                    foreach (var v in dag.Vertices)
                    {
                        w.WriteStartObject();
                        w.WriteString("kind", v.Kind == DagVertexKind.Hidden ? "hidden" : "output");
                        if (v.Bias is { } b)
                        {
                            w.WriteNumber("bias", b);
                        }
                        else
                        {
                            w.WriteNull("bias");
                        }
                        if (v.Kind == DagVertexKind.Hidden)
                        {
                            w.WriteString("activation", v.Activation!.Name);
                        }
                        w.WriteEndObject();
                    }
                    w.WriteEndArray();
                    w.WriteStartArray("edges");
                    foreach (var e in dag.Edges)
                    {
                        w.WriteStartObject();
                        w.WriteNumber("from", e.From);
                        w.WriteNumber("to", e.To);
                        w.WriteNumber("parameter", e.Parameter);
                        w.WriteEndObject();
                    }
                    w.WriteEndArray();
                    break;
                default:
                    throw new NotSupportedException($"no model file format for {point.Network.GetType().Name}");
            }
            if (point.Network.Scaling is { } s)
            {
                w.WriteStartObject("input");
                WriteArray(w, "shift", s.Shift);
                WriteArray(w, "scale", s.Scale);
                w.WriteEndObject();
            }
            WriteArray(w, "parameters", point.Parameters);
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(stream.ToArray()) + "\n";
    }

    /// <summary>Reads a model file; every fault is a <see cref="ModelFormatException"/> naming the file.</summary>
    public static NetworkPoint Load(string path)
    {
        if (!File.Exists(path))
        {
            throw new ModelFormatException($"model file not found: {path}");
        }
        return Parse(File.ReadAllText(path), path);
    }

    /// <summary>Parses model JSON; <paramref name="source"/> names it in errors.</summary>
    public static NetworkPoint Parse(string json, string source)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json, JsonInput.Strict);
        }
        catch (JsonException ex)
        {
            string reason = string.IsNullOrWhiteSpace(json) ? "the file is empty" : JsonInput.Reason(ex);
            string where = ex.LineNumber is { } line ? $"{source}:{line + 1}:{(ex.BytePositionInLine ?? 0) + 1}" : source; // a duplicate key has no position
            throw new ModelFormatException($"{where}: not valid JSON: {reason}", ex);
        }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw new ModelFormatException($"{source}: a model file is a JSON object");
            }
            var reader = new Reader(source);
            string format = reader.String(root, "format");
            FeedforwardNetwork network = format switch
            {
                MlpFormat => reader.Mlp(root),
                DagFormat => reader.Dag(root),
                _ => throw new ModelFormatException($"{source}: unknown format '{format}'; expected {MlpFormat} or {DagFormat}"),
            };
            if (root.TryGetProperty("input", out var input) && input.ValueKind != JsonValueKind.Null)
            {
                var shift = reader.Numbers(input, "shift", "input.shift");
                var scale = reader.Numbers(input, "scale", "input.scale");
                if (shift.Length != network.InputDim || scale.Length != network.InputDim)
                {
                    throw new ModelFormatException($"{source}: input.shift has {shift.Length} and input.scale {scale.Length} numbers; inputDim is {network.InputDim}");
                }
                int zero = Array.FindIndex(scale, v => v == 0.0);
                if (zero >= 0)
                {
                    throw new ModelFormatException($"{source}: input.scale[{zero}] is 0; the network divides by it");
                }
                network = network switch
                {
                    Mlp m => m.WithScaling(new InputScaling(shift, scale)),
                    DagNetwork g => new DagNetwork(g.InputDim, g.Vertices, g.Edges, g.ParameterCount) { Scaling = new InputScaling(shift, scale) },
                    _ => network,
                };
            }
            var parameters = reader.Numbers(root, "parameters", "parameters");
            if (parameters.Length != network.ParameterCount)
            {
                throw new ModelFormatException($"{source}: 'parameters' has {parameters.Length} numbers, but the network described needs n = {network.ParameterCount}");
            }
            return new NetworkPoint(network, parameters);
        }
    }

    private static void WriteArray(Utf8JsonWriter w, string name, IReadOnlyList<double> values)
    {
        w.WriteStartArray(name);
        foreach (double v in values)
        {
            if (!double.IsFinite(v))
            {
                throw new ArgumentException($"'{name}' holds {v.ToString(CultureInfo.InvariantCulture)}; model files hold finite numbers only");
            }
            // Shortest representation that parses back to the same double ("R" semantics since .NET Core 3.0).
            w.WriteRawValue(v.ToString("R", CultureInfo.InvariantCulture));
        }
        w.WriteEndArray();
    }

    private sealed class Reader(string source)
    {
        public Mlp Mlp(JsonElement root)
        {
            int inputDim = PositiveInt(root, "inputDim");
            int outputDim = PositiveInt(root, "outputDim");
            var hidden = new List<HiddenLayer>();
            var array = Property(root, "hidden", JsonValueKind.Array);
            int k = 0;
            foreach (var layer in array.EnumerateArray())
            {
                k++;
                if (layer.ValueKind != JsonValueKind.Object)
                {
                    throw Fail($"hidden layer {k} is not an object");
                }
                hidden.Add(new HiddenLayer(PositiveInt(layer, "width", $"hidden layer {k}"), Activation(layer, $"hidden layer {k}")));
            }
            return new Mlp(inputDim, hidden, outputDim);
        }

        public DagNetwork Dag(JsonElement root)
        {
            int inputDim = PositiveInt(root, "inputDim");
            int m = PositiveInt(root, "parameterCount");
            var vertices = new List<DagVertex>();
            int k = 0;
            foreach (var v in Property(root, "vertices", JsonValueKind.Array).EnumerateArray())
            {
                string where = $"vertex {inputDim + k}";
                k++;
                string kind = String(v, "kind", where);
                int? bias = v.TryGetProperty("bias", out var b) && b.ValueKind != JsonValueKind.Null ? Int(b, $"{where}.bias") : null;
                vertices.Add(kind switch
                {
                    "hidden" => new DagVertex(DagVertexKind.Hidden, bias, Activation(v, where)),
                    // Outputs are linear (Section 2 of the paper): an activation there would be silently ignored, so it is refused.
                    "output" => v.TryGetProperty("activation", out var a) && a.ValueKind != JsonValueKind.Null
                        ? throw Fail($"{where}: an output vertex is linear and takes no activation (found '{a}'); add a hidden vertex with the activation before it")
                        : new DagVertex(DagVertexKind.Output, bias),
                    _ => throw Fail($"{where}: unknown kind '{kind}'; expected hidden or output"),
                });
            }
            var edges = new List<DagEdge>();
            k = 0;
            foreach (var e in Property(root, "edges", JsonValueKind.Array).EnumerateArray())
            {
                string where = $"edge {k++}";
                edges.Add(new DagEdge(Int(Property(e, "from", JsonValueKind.Number, where), where + ".from"), Int(Property(e, "to", JsonValueKind.Number, where), where + ".to"), Int(Property(e, "parameter", JsonValueKind.Number, where), where + ".parameter")));
            }
            try
            {
                return new DagNetwork(inputDim, vertices, edges, m);
            }
            catch (ArgumentException ex)
            {
                throw Fail(ex.Message);
            }
        }

        public string String(JsonElement obj, string name, string? where = null) =>
            Property(obj, name, JsonValueKind.String, where).GetString()!;

        public double[] Numbers(JsonElement obj, string name, string label)
        {
            var array = Property(obj, name, JsonValueKind.Array);
            var values = new double[array.GetArrayLength()];
            int i = 0;
            foreach (var item in array.EnumerateArray())
            {
                if (item.ValueKind != JsonValueKind.Number || !item.TryGetDouble(out double v) || !double.IsFinite(v))
                {
                    throw Fail($"{label}[{i}] is not a finite number");
                }
                values[i++] = v;
            }
            return values;
        }

        private Activation Activation(JsonElement obj, string where)
        {
            string name = String(obj, "activation", where);
            return ActivationRegistry.TryGet(name, out var a) && a is not null
                ? a
                : throw Fail($"{where}: unknown activation '{name}'; expected one of: {string.Join(", ", ActivationRegistry.Names)}");
        }

        private int PositiveInt(JsonElement obj, string name, string? where = null)
        {
            int v = Int(Property(obj, name, JsonValueKind.Number, where), where is null ? name : $"{where}.{name}");
            return v >= 1 ? v : throw Fail($"{(where is null ? name : $"{where}.{name}")} must be a positive integer, got {v}");
        }

        private int Int(JsonElement e, string label)
        {
            if (e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out int v))
            {
                return v;
            }
            // An integer outside int's range is a size no array here can have: name the limit, not the type.
            bool large = e.ValueKind == JsonValueKind.Number && e.TryGetDouble(out double x) && Math.Floor(x) == x && Math.Abs(x) > int.MaxValue;
            string raw = e.GetRawText();
            const int Quoted = 24; // a number of a thousand digits is named by its start and length, not echoed
            string shown = raw.Length <= Quoted ? raw : $"{raw[..Quoted]}… ({raw.Length} characters)";
            throw Fail(large
                ? $"{label} = {shown} is beyond the largest size this library takes, {int.MaxValue} (2³¹ − 1)"
                : $"{label} must be an integer");
        }

        private JsonElement Property(JsonElement obj, string name, JsonValueKind kind, string? where = null)
        {
            string label = where is null ? $"'{name}'" : $"{where}: '{name}'";
            if (obj.ValueKind != JsonValueKind.Object || !obj.TryGetProperty(name, out var value))
            {
                throw Fail($"missing {label}");
            }
            return value.ValueKind == kind ? value : throw Fail($"{label} must be a JSON {kind.ToString().ToLowerInvariant()}, found {value.ValueKind.ToString().ToLowerInvariant()}");
        }

        private ModelFormatException Fail(string message) => new($"{source}: {message}");
    }
}
