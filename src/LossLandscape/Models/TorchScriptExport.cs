using System.Globalization;
using System.IO.Compression;
using System.Text;
using LossLandscape.Engine;
using LossLandscape.Models.Activations;

namespace LossLandscape.Models;

/// <summary>
/// Writes one of the project's layered networks at a point p as a TorchScript module file, the format of PyTorch's
/// <c>torch.jit.save</c>: <c>torch.jit.load(path)</c> in PyTorch (and <see cref="TorchScriptNetwork.Open"/> here) gives back a
/// module whose <c>named_parameters()</c>, flattened and concatenated in order, are p exactly (float64), and whose
/// <c>forward</c> computes f_p. So a network made or trained here can be checked in PyTorch.
/// </summary>
/// <remarks>
/// <para>What the file holds: one module class, <c>LandscapeNetwork</c>, whose parameters are the network's layers' blocks
/// in p's order (<c>layer{k}_weight</c>, <c>layer{k}_bias</c>, k counting from 1 as <c>landscape info</c> does), whose buffers
/// are batch norms' running statistics (<c>layer{k}_running_mean</c>, <c>layer{k}_running_var</c>) and the input scaling
/// (<c>input_shift</c>, <c>input_scale</c>), and whose <c>forward</c> is written in TorchScript's own operators: conv2d,
/// max and average pooling, batch norm in eval mode, flatten, linear, and every activation the project has (smooLU
/// x·e^{−1/x} for x above its cutoff, written with <c>torch.where</c> as <see cref="SmooLU"/> computes it). The module is
/// saved in eval mode. forward takes rows of any shape holding the network's p input values each.</para>
/// <para>The container is the TorchScript archive (file format version 3, which PyTorch 1.x and 2.x read): a zip of
/// uncompressed records, <c>data.pkl</c> (the module object, pickled with protocol 2, tensors as persistent storage
/// references), <c>data/K</c> (each tensor's float64 values, little-endian), <c>code/__torch__.py</c> (the class) and
/// <c>constants.pkl</c>. DAG networks are refused: their shared parameters are not a layer list.</para>
/// </remarks>
public static class TorchScriptExport
{
    /// <summary>The class of the written module.</summary>
    public const string ClassName = "LandscapeNetwork";

    /// <summary>
    /// Writes <paramref name="network"/> at <paramref name="parameters"/> to <paramref name="path"/> atomically (the old file,
    /// if any, is replaced only once the new one is complete).
    /// </summary>
    /// <exception cref="LandscapeInputException">The network is not an MLP or a sequential network, or p has the wrong length.</exception>
    public static void Save(string path, FeedforwardNetwork network, IReadOnlyList<double> parameters)
    {
        ArgumentNullException.ThrowIfNull(path);
        var bytes = Archive(network, parameters);
        AtomicFile.WriteAllBytes(path, bytes);
    }

    /// <summary>The file's bytes: the archive <see cref="Save"/> writes.</summary>
    public static byte[] Archive(FeedforwardNetwork network, IReadOnlyList<double> parameters)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(parameters);
        if (parameters.Count != network.ParameterCount)
        {
            throw new LandscapeInputException($"{parameters.Count} parameters for a network with n = {network.ParameterCount}");
        }
        var module = network switch
        {
            Mlp mlp => Describe(mlp, parameters),
            SequentialNetwork seq => Describe(seq, parameters),
            _ => throw new LandscapeInputException($"a {network.GetType().Name} cannot be written as TorchScript: only MLPs and sequential networks (losslandscape.seq/1) are a list of layers PyTorch has"),
        };
        return Zip(module);
    }

    /// <summary>A tensor attribute of the module: its name, shape and float64 values, and whether it is a parameter or a buffer.</summary>
    private sealed record Attribute(string Name, long[] Shape, double[] Values, bool IsParameter);

    /// <summary>The module: its attributes (parameters first, in p's order) and the body of its forward.</summary>
    private sealed class Module
    {
        public List<Attribute> Attributes { get; } = [];

        public List<string> Body { get; } = [];

        private int _next;

        /// <summary>The name of the value the last line bound (x at first).</summary>
        public string Current { get; private set; } = "x";

        /// <summary>Binds a new value to <paramref name="expression"/> of the current one (written as {0}).</summary>
        public void Let(string expression)
        {
            string name = $"x{_next++}";
            Body.Add($"{name} = {string.Format(CultureInfo.InvariantCulture, expression, Current)}");
            Current = name;
        }

        public void Parameter(string name, long[] shape, IReadOnlyList<double> p, int offset) =>
            Attributes.Add(new Attribute(name, shape, Slice(p, offset, shape), IsParameter: true));

        public void Buffer(string name, long[] shape, IReadOnlyList<double> values) =>
            Attributes.Add(new Attribute(name, shape, [.. values], IsParameter: false));

        private static double[] Slice(IReadOnlyList<double> p, int offset, long[] shape)
        {
            long count = shape.Aggregate(1L, (a, b) => a * b);
            var values = new double[count];
            for (long i = 0; i < count; i++)
            {
                values[i] = p[offset + (int)i];
            }
            return values;
        }
    }

    private static Module Describe(Mlp mlp, IReadOnlyList<double> p)
    {
        var module = new Module();
        Scale(module, mlp, [mlp.InputDim]);
        int k = 1;
        foreach (var layer in mlp.Layers)
        {
            module.Parameter($"layer{k}_weight", [layer.Out, layer.In], p, layer.WeightOffset);
            module.Parameter($"layer{k}_bias", [layer.Out], p, layer.BiasOffset);
            module.Let($"torch.linear({{0}}, self.layer{k}_weight, self.layer{k}_bias)");
            if (layer.Activation is { } activation)
            {
                Activate(module, activation);
            }
            k++;
        }
        return module;
    }

    private static Module Describe(SequentialNetwork seq, IReadOnlyList<double> p)
    {
        var module = new Module();
        Scale(module, seq, seq.InputShape);
        foreach (var s in seq.Layers)
        {
            int k = s.Index + 1;
            switch (s.Layer)
            {
                case Conv2dLayer c:
                    module.Parameter($"layer{k}_weight", [c.Out, s.InputShape[0], c.Kernel, c.Kernel], p, s.Offset);
                    module.Parameter($"layer{k}_bias", [c.Out], p, s.Offset + s.WeightCount);
                    module.Let($"torch.conv2d({{0}}, self.layer{k}_weight, self.layer{k}_bias, {Pair(c.Stride)}, {Pair(c.Padding)}, [1, 1])");
                    break;
                case MaxPool2dLayer m:
                    module.Let($"torch.max_pool2d({{0}}, {Pair(m.Kernel)}, {Pair(m.Stride)}, [0, 0], [1, 1], False)");
                    break;
                case AvgPool2dLayer a:
                    module.Let($"torch.avg_pool2d({{0}}, {Pair(a.Kernel)}, {Pair(a.Stride)}, [0, 0], False, True, None)");
                    break;
                case BatchNormLayer bn:
                    long channels = s.InputShape[0];
                    module.Parameter($"layer{k}_weight", [channels], p, s.Offset);
                    module.Parameter($"layer{k}_bias", [channels], p, s.Offset + s.WeightCount);
                    module.Buffer($"layer{k}_running_mean", [channels], bn.RunningMean ?? throw new LandscapeInputException($"layer {k} (batchnorm) has no running mean"));
                    module.Buffer($"layer{k}_running_var", [channels], bn.RunningVar ?? throw new LandscapeInputException($"layer {k} (batchnorm) has no running variance"));
                    module.Let($"torch.batch_norm({{0}}, self.layer{k}_weight, self.layer{k}_bias, self.layer{k}_running_mean, self.layer{k}_running_var, False, 0.10000000000000001, {Float(bn.Eps)}, False)");
                    break;
                case FlattenLayer:
                    module.Let("torch.flatten({0}, 1)");
                    break;
                case LinearLayer l:
                    module.Parameter($"layer{k}_weight", [l.Out, s.InputShape[0]], p, s.Offset);
                    module.Parameter($"layer{k}_bias", [l.Out], p, s.Offset + s.WeightCount);
                    module.Let($"torch.linear({{0}}, self.layer{k}_weight, self.layer{k}_bias)");
                    break;
                case ActivationLayer act:
                    Activate(module, act.Activation);
                    break;
                default:
                    throw new LandscapeInputException($"layer {k} ({s.Layer.Type}) has no TorchScript form");
            }
        }
        return module;
    }

    /// <summary>The rows as flat vectors, (x − shift)/scale where the network stores a scaling, then viewed in the network's row shape.</summary>
    private static void Scale(Module module, FeedforwardNetwork network, IReadOnlyList<long> rowShape)
    {
        module.Let($"torch.reshape({{0}}, [-1, {network.InputDim.ToString(CultureInfo.InvariantCulture)}])");
        if (network.Scaling is { } scaling)
        {
            module.Buffer("input_shift", [scaling.Dimension], scaling.Shift);
            module.Buffer("input_scale", [scaling.Dimension], scaling.Scale);
            module.Let("torch.div(torch.sub({0}, self.input_shift), self.input_scale)");
        }
        if (rowShape.Count > 1)
        {
            module.Let($"torch.reshape({{0}}, [-1, {string.Join(", ", rowShape.Select(v => v.ToString(CultureInfo.InvariantCulture)))}])");
        }
    }

    /// <summary>An activation in TorchScript's operators, value for value what the project's <see cref="Activation.Apply"/> computes.</summary>
    private static void Activate(Module module, Activation activation)
    {
        switch (activation.Name)
        {
            case "relu":
                module.Let("torch.relu({0})");
                break;
            case "tanh":
                module.Let("torch.tanh({0})");
                break;
            case "sigmoid":
                module.Let("torch.sigmoid({0})");
                break;
            case "softplus":
                // max(x, 0) + log1p(e^{−|x|}): the project's Softplus, exact where PyTorch's softplus switches to x above 20.
                module.Let("torch.add(torch.relu({0}), torch.log1p(torch.exp(torch.neg(torch.abs({0})))))");
                break;
            case "rectified-tanh":
                // tanh(x) for x > 0, else 0: tanh ≤ 0 there, so relu(tanh(x)).
                module.Let("torch.relu(torch.tanh({0}))");
                break;
            case "rectified-sigmoid":
                // sigmoid(x) − ½ for x > 0, else 0: sigmoid − ½ ≤ 0 there, so relu(sigmoid(x) − ½).
                module.Let("torch.relu(torch.sub(torch.sigmoid({0}), 0.5))");
                break;
            case "smoolu":
            {
                // x·e^{−1/x} above the cutoff, 0 at and below it; x replaced by 1 where masked, so no 1/0 enters the graph.
                string x = module.Current;
                module.Let($"torch.gt({{0}}, {Float(SmooLU.Cutoff)})");
                string mask = module.Current;
                module.Let($"torch.where({mask}, {x}, torch.ones_like({x}))");
                string safe = module.Current;
                module.Let($"torch.where({mask}, torch.mul({safe}, torch.exp(torch.neg(torch.reciprocal({safe})))), torch.zeros_like({x}))");
                break;
            }
            default:
                throw new LandscapeInputException($"the activation '{activation.Name}' has no TorchScript form");
        }
    }

    private static string Pair(int v) => string.Create(CultureInfo.InvariantCulture, $"[{v}, {v}]");

    /// <summary>A float literal TorchScript reads back to the same double.</summary>
    private static string Float(double v)
    {
        string s = v.ToString("R", CultureInfo.InvariantCulture);
        return s.Contains('.', StringComparison.Ordinal) || s.Contains('E', StringComparison.Ordinal) ? s.Replace("E", "e", StringComparison.Ordinal) : s + ".0";
    }

    private static string Code(Module module)
    {
        var code = new StringBuilder();
        string List(bool parameters) => string.Concat(module.Attributes.Where(a => a.IsParameter == parameters).Select(a => $"\"{a.Name}\", "));
        code.Append("class ").Append(ClassName).Append("(Module):\n");
        code.Append("  __parameters__ = [").Append(List(true)).Append("]\n");
        code.Append("  __buffers__ = [").Append(List(false)).Append("]\n");
        foreach (var a in module.Attributes)
        {
            code.Append("  ").Append(a.Name).Append(" : Tensor\n");
        }
        code.Append("  training : bool\n");
        code.Append("  def forward(self: __torch__.").Append(ClassName).Append(",\n    x: Tensor) -> Tensor:\n");
        foreach (var line in module.Body)
        {
            code.Append("    ").Append(line).Append('\n');
        }
        code.Append("    return ").Append(module.Current).Append('\n');
        return code.ToString();
    }

    private static byte[] Zip(Module module)
    {
        const string root = "landscape/";
        if (!BitConverter.IsLittleEndian)
        {
            throw new PlatformNotSupportedException("TorchScript records are little-endian");
        }
        using var buffer = new MemoryStream();
        using (var zip = new ZipArchive(buffer, ZipArchiveMode.Create, leaveOpen: true))
        {
            void Record(string name, byte[] bytes)
            {
                var entry = zip.CreateEntry(root + name, CompressionLevel.NoCompression);
                entry.LastWriteTime = new DateTimeOffset(1980, 1, 1, 0, 0, 0, TimeSpan.Zero);
                using var stream = entry.Open();
                stream.Write(bytes);
            }
            Record("version", Encoding.ASCII.GetBytes("3\n"));
            Record("code/__torch__.py", Encoding.UTF8.GetBytes(Code(module)));
            Record("constants.pkl", [Pickle.Proto, 2, Pickle.EmptyTuple, Pickle.Stop]);
            Record("data.pkl", DataPickle(module));
            for (int i = 0; i < module.Attributes.Count; i++)
            {
                var values = module.Attributes[i].Values;
                var bytes = new byte[values.Length * sizeof(double)];
                for (int j = 0; j < values.Length; j++)
                {
                    BitConverter.TryWriteBytes(bytes.AsSpan(j * sizeof(double)), values[j]);
                }
                Record($"data/{i.ToString(CultureInfo.InvariantCulture)}", bytes);
            }
        }
        return buffer.ToArray();
    }

    /// <summary>
    /// The module object: <c>__torch__.LandscapeNetwork</c> built from a dict of its attributes, each tensor rebuilt by
    /// <c>torch._utils._rebuild_tensor_v2</c> from a persistent reference to its storage record <c>data/K</c>.
    /// </summary>
    private static byte[] DataPickle(Module module)
    {
        var pickle = new Pickle();
        pickle.Global("__torch__", ClassName).Op(Pickle.EmptyTuple).Op(Pickle.NewObj).Op(Pickle.EmptyDict).Op(Pickle.Mark);
        for (int i = 0; i < module.Attributes.Count; i++)
        {
            var a = module.Attributes[i];
            var strides = new long[a.Shape.Length];
            long stride = 1;
            for (int j = a.Shape.Length - 1; j >= 0; j--)
            {
                strides[j] = stride;
                stride *= a.Shape[j];
            }
            pickle.Text(a.Name);
            pickle.Global("torch._utils", "_rebuild_tensor_v2").Op(Pickle.Mark);
            pickle.Op(Pickle.Mark).Text("storage").Global("torch", "DoubleStorage").Text(i.ToString(CultureInfo.InvariantCulture)).Text("cpu").Int(a.Values.Length).Op(Pickle.Tuple).Op(Pickle.BinPersId);
            pickle.Int(0);
            pickle.Op(Pickle.Mark);
            foreach (var size in a.Shape)
            {
                pickle.Int(size);
            }
            pickle.Op(Pickle.Tuple).Op(Pickle.Mark);
            foreach (var s in strides)
            {
                pickle.Int(s);
            }
            pickle.Op(Pickle.Tuple).Op(a.IsParameter ? Pickle.True : Pickle.False);
            pickle.Global("collections", "OrderedDict").Op(Pickle.EmptyTuple).Op(Pickle.Reduce);
            pickle.Op(Pickle.Tuple).Op(Pickle.Reduce);
        }
        pickle.Text("training").Op(Pickle.False);
        pickle.Op(Pickle.SetItems).Op(Pickle.Build).Op(Pickle.Stop);
        return pickle.ToArray();
    }

    /// <summary>The few opcodes of Python's pickle protocol 2 that a TorchScript module's data needs.</summary>
    private sealed class Pickle
    {
        public const byte Proto = 0x80, EmptyTuple = (byte)')', NewObj = 0x81, EmptyDict = (byte)'}', Mark = (byte)'(', Tuple = (byte)'t',
            BinPersId = (byte)'Q', Reduce = (byte)'R', SetItems = (byte)'u', Build = (byte)'b', Stop = (byte)'.', True = 0x88, False = 0x89;

        private readonly MemoryStream _bytes = new();

        public Pickle() => _bytes.Write([Proto, 2]);

        public Pickle Op(byte op)
        {
            _bytes.WriteByte(op);
            return this;
        }

        /// <summary>GLOBAL: <c>c</c>module\nname\n.</summary>
        public Pickle Global(string module, string name)
        {
            _bytes.WriteByte((byte)'c');
            _bytes.Write(Encoding.ASCII.GetBytes($"{module}\n{name}\n"));
            return this;
        }

        /// <summary>BINUNICODE: <c>X</c>, the UTF-8 length (4 bytes, little-endian), the bytes.</summary>
        public Pickle Text(string text)
        {
            var utf8 = Encoding.UTF8.GetBytes(text);
            _bytes.WriteByte((byte)'X');
            _bytes.Write(BitConverter.GetBytes(utf8.Length));
            _bytes.Write(utf8);
            return this;
        }

        /// <summary>BININT (<c>J</c>, 4 bytes) for a value that fits, else LONG1 (0x8a, 8 bytes, two's complement).</summary>
        public Pickle Int(long value)
        {
            if (value is >= int.MinValue and <= int.MaxValue)
            {
                _bytes.WriteByte((byte)'J');
                _bytes.Write(BitConverter.GetBytes((int)value));
            }
            else
            {
                _bytes.WriteByte(0x8a);
                _bytes.WriteByte(8);
                _bytes.Write(BitConverter.GetBytes(value));
            }
            return this;
        }

        public byte[] ToArray() => _bytes.ToArray();
    }
}
