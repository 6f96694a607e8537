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
/// <para><c>losslandscape.seq/1</c> stores a <see cref="SequentialNetwork"/>:</para>
/// <code>
/// {"format":"losslandscape.seq/1","inputShape":[1,8,8],
///  "layers":[{"type":"conv2d","out":16,"kernel":3,"stride":1,"padding":1},{"type":"relu"},
///            {"type":"maxpool2d","kernel":2,"stride":2},{"type":"avgpool2d","kernel":2,"stride":2},
///            {"type":"batchnorm","eps":1e-05,"runningMean":[...],"runningVar":[...]},
///            {"type":"flatten"},{"type":"linear","out":10}],
///  "outputs":l,
///  "input":{"shift":[...],"scale":[...]},      (optional; over the p values of a row, in row-major order)
///  "parameters":[ ... n numbers ... ]}
/// </code>
/// <para>The input shape is [C, H, W] or [p]; an activation layer's type is its name; a conv2d's stride and padding default to 1
/// and 0, a pool's stride to its kernel, a batch norm's eps to 1e−5; <c>outputs</c> must equal the last layer's size. The
/// parameters are each layer's in order as PyTorch lists them (conv2d weight [out, in, k, k] then bias; linear weight
/// [out, in] then bias; batch norm γ then β); the batch norm's running statistics are fixed values, not parameters.</para>
/// <para>A TorchScript module (<see cref="TorchScriptNetwork"/>) is its own file, read and written by PyTorch's format; where a
/// document holds a model (a path file), it is a reference to that file:</para>
/// <code>
/// {"format":"torchscript","path":"/abs/net.pt","inputShape":[1,28,28],"dtype":"float64","codeDigest":"…","parameters":[ … ]}
/// </code>
/// <para>read back by reopening the file, refused when its code has changed since.</para>
/// </remarks>
public static class ModelFile
{
    /// <summary>The format tag of layered networks.</summary>
    public const string MlpFormat = "losslandscape.mlp/1";

    /// <summary>The format tag of DAG networks.</summary>
    public const string DagFormat = "losslandscape.dag/1";

    /// <summary>The format tag of sequential (layered, convolutional) networks, <see cref="SequentialNetwork"/>.</summary>
    public const string SeqFormat = "losslandscape.seq/1";

    /// <summary>The format name of a TorchScript module (a zip archive written by <c>torch.jit.save</c>, <see cref="TorchScriptNetwork"/>).</summary>
    public const string TorchScriptFormat = "torchscript";

    /// <summary>The format tag a network is written with: <see cref="MlpFormat"/>, <see cref="DagFormat"/> or <see cref="SeqFormat"/>.</summary>
    public static string FormatOf(FeedforwardNetwork network) => network switch
    {
        Mlp => MlpFormat,
        DagNetwork => DagFormat,
        SequentialNetwork => SeqFormat,
        TorchScriptNetwork => TorchScriptFormat,
        null => throw new ArgumentNullException(nameof(network)),
        _ => throw new NotSupportedException($"no model file format for {network.GetType().Name}"),
    };

    /// <summary>Writes <paramref name="point"/> to <paramref name="path"/>.</summary>
    public static void Save(string path, NetworkPoint point)
    {
        ArgumentNullException.ThrowIfNull(point);
        if (point.Network is TorchScriptNetwork script)
        {
            script.Save(path, point.Parameters); // a TorchScript module is written as one, PyTorch reads it back
            return;
        }
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
                case SequentialNetwork seq:
                    w.WriteString("format", SeqFormat);
                    w.WriteStartArray("inputShape");
                    foreach (long size in seq.InputShape)
                    {
                        w.WriteNumberValue(size);
                    }
                    w.WriteEndArray();
                    w.WriteStartArray("layers");
                    foreach (var layer in seq.Layers)
                    {
                        WriteLayer(w, layer.Layer);
                    }
                    w.WriteEndArray();
                    w.WriteNumber("outputs", seq.OutputDim);
                    break;
                case TorchScriptNetwork script:
                    // A reference to the module's file (a path file's model): the file, the row shape, the compute type and a
                    // digest of its code, checked when the reference is read back.
                    w.WriteString("format", TorchScriptFormat);
                    w.WriteString("path", Path.GetFullPath(script.Path));
                    w.WriteStartArray("inputShape");
                    foreach (var size in script.InputShape)
                    {
                        w.WriteNumberValue(size);
                    }
                    w.WriteEndArray();
                    w.WriteString("dtype", script.ComputesInFloat64 ? "float64" : "float32");
                    w.WriteString("codeDigest", script.CodeDigest);
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

    /// <summary>
    /// Reads a model file: one of the project's JSON formats, or a TorchScript module (<see cref="TorchScriptNetwork.Open"/>),
    /// which takes rows of <paramref name="inputShape"/> (the data's: TorchScript does not record its input's shape). Every fault
    /// is a <see cref="ModelFormatException"/> naming the file.
    /// </summary>
    /// <param name="path">The file.</param>
    /// <param name="inputShape">The shape of one row, for a TorchScript module; ignored by the JSON formats, which store theirs.</param>
    /// <param name="computeType">What a TorchScript module computes in: float64 (default) or float32; the JSON formats are float64.</param>
    public static NetworkPoint Load(string path, IReadOnlyList<long>? inputShape = null, TorchSharp.torch.ScalarType computeType = TorchSharp.torch.ScalarType.Float64)
    {
        if (!File.Exists(path))
        {
            throw new ModelFormatException($"model file not found: {path}");
        }
        if (TorchScriptNetwork.IsTorchScriptFile(path))
        {
            return TorchScriptNetwork.Open(path, inputShape ?? throw new ModelFormatException($"{path}: a TorchScript module does not record the shape of its input; it is read with the data's"), computeType);
        }
        if (computeType != TorchSharp.torch.ScalarType.Float64)
        {
            throw new LandscapeInputException($"{path}: the project's model formats compute in float64; float32 is for TorchScript modules");
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
                SeqFormat => reader.Sequential(root),
                TorchScriptFormat => TorchScriptReference(reader, root, source),
                _ => throw new ModelFormatException($"{source}: unknown format '{format}'; expected {MlpFormat}, {DagFormat} or {SeqFormat}"),
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
                    SequentialNetwork q => q.WithScaling(new InputScaling(shift, scale)),
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

    /// <summary>The network a TorchScript reference names (see <see cref="Serialize"/>): its file, reopened, with the same code.</summary>
    private static TorchScriptNetwork TorchScriptReference(Reader reader, JsonElement root, string source)
    {
        string file = reader.String(root, "path");
        var shape = reader.Numbers(root, "inputShape", "inputShape").Select(v => (long)v).ToArray();
        var type = reader.String(root, "dtype") == "float32" ? TorchSharp.torch.ScalarType.Float32 : TorchSharp.torch.ScalarType.Float64;
        var script = (TorchScriptNetwork)TorchScriptNetwork.Open(file, shape, type).Network;
        if (script.CodeDigest != reader.String(root, "codeDigest"))
        {
            throw new ModelFormatException($"{source}: the TorchScript module {file} has changed since this was written (its code differs)");
        }
        return script;
    }

    private static void WriteLayer(Utf8JsonWriter w, SequentialLayer layer)
    {
        w.WriteStartObject();
        w.WriteString("type", layer.Type);
        switch (layer)
        {
            case Conv2dLayer c:
                w.WriteNumber("out", c.Out);
                w.WriteNumber("kernel", c.Kernel);
                w.WriteNumber("stride", c.Stride);
                w.WriteNumber("padding", c.Padding);
                break;
            case MaxPool2dLayer m:
                w.WriteNumber("kernel", m.Kernel);
                w.WriteNumber("stride", m.Stride);
                break;
            case AvgPool2dLayer a:
                w.WriteNumber("kernel", a.Kernel);
                w.WriteNumber("stride", a.Stride);
                break;
            case BatchNormLayer bn:
                w.WritePropertyName("eps");
                w.WriteRawValue(bn.Eps.ToString("R", CultureInfo.InvariantCulture));
                WriteArray(w, "runningMean", bn.RunningMean!);
                WriteArray(w, "runningVar", bn.RunningVar!);
                break;
            case LinearLayer l:
                w.WriteNumber("out", l.Out);
                break;
        }
        w.WriteEndObject();
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

        public SequentialNetwork Sequential(JsonElement root)
        {
            var shapeArray = Property(root, "inputShape", JsonValueKind.Array);
            var shape = new List<long>();
            foreach (var size in shapeArray.EnumerateArray())
            {
                shape.Add(Int(size, $"inputShape[{shape.Count}]"));
            }
            var array = Property(root, "layers", JsonValueKind.Array);
            int count = array.GetArrayLength();
            var layers = new List<SequentialLayer>();
            foreach (var layer in array.EnumerateArray())
            {
                layers.Add(Layer(layer, $"layer {layers.Count + 1} of {count}"));
            }
            int outputs = PositiveInt(root, "outputs");
            SequentialNetwork network;
            try
            {
                network = new SequentialNetwork(shape, layers);
            }
            catch (ArgumentException ex)
            {
                throw Fail(ex.Message);
            }
            return network.OutputDim == outputs
                ? network
                : throw Fail($"'outputs' is {outputs}, but the last layer gives {network.OutputDim}");
        }

        /// <summary>One layer object; a field its type does not take is refused (a misspelt 'stride' would otherwise be a silent default).</summary>
        private SequentialLayer Layer(JsonElement obj, string where)
        {
            if (obj.ValueKind != JsonValueKind.Object)
            {
                throw Fail($"{where} is not an object");
            }
            string type = String(obj, "type", where);
            where = $"{where} ({type})";
            Activation? activation = null;
            bool known = type is "conv2d" or "maxpool2d" or "avgpool2d" or "batchnorm" or "flatten" or "linear"
                || (ActivationRegistry.TryGet(type, out activation) && activation!.Name == type);
            if (!known)
            {
                throw Fail($"{where}: unknown layer type; expected conv2d, maxpool2d, avgpool2d, batchnorm, flatten, linear or an activation ({string.Join(", ", ActivationRegistry.Names)})");
            }
            string[] fields = type switch
            {
                "conv2d" => ["out", "kernel", "stride", "padding"],
                "maxpool2d" or "avgpool2d" => ["kernel", "stride"],
                "batchnorm" => ["eps", "runningMean", "runningVar"],
                "linear" => ["out"],
                _ => [],
            };
            foreach (var field in obj.EnumerateObject())
            {
                if (field.Name != "type" && !fields.Contains(field.Name))
                {
                    throw Fail($"{where}: unknown field '{field.Name}'; a {type} layer has {(fields.Length == 0 ? "no field but 'type'" : string.Join(", ", fields.Select(f => $"'{f}'")))}");
                }
            }
            int Optional(string name, int fallback) =>
                obj.TryGetProperty(name, out _) ? Int(Property(obj, name, JsonValueKind.Number, where), $"{where}: '{name}'") : fallback;
            switch (type)
            {
                case "conv2d":
                    return new Conv2dLayer(PositiveInt(obj, "out", where), PositiveInt(obj, "kernel", where), Optional("stride", 1), Optional("padding", 0));
                case "maxpool2d":
                {
                    int kernel = PositiveInt(obj, "kernel", where);
                    return new MaxPool2dLayer(kernel, Optional("stride", kernel));
                }
                case "avgpool2d":
                {
                    int kernel = PositiveInt(obj, "kernel", where);
                    return new AvgPool2dLayer(kernel, Optional("stride", kernel));
                }
                case "batchnorm":
                {
                    double eps = BatchNormLayer.DefaultEps;
                    if (obj.TryGetProperty("eps", out _) && !Property(obj, "eps", JsonValueKind.Number, where).TryGetDouble(out eps))
                    {
                        throw Fail($"{where}: 'eps' is not a finite number");
                    }
                    Property(obj, "runningMean", JsonValueKind.Array, where);
                    Property(obj, "runningVar", JsonValueKind.Array, where);
                    return new BatchNormLayer(Numbers(obj, "runningMean", $"{where}: runningMean"), Numbers(obj, "runningVar", $"{where}: runningVar"), eps);
                }
                case "flatten":
                    return new FlattenLayer();
                case "linear":
                    return new LinearLayer(PositiveInt(obj, "out", where));
                default:
                    return new ActivationLayer(activation!);
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
