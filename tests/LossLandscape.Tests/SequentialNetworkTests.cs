using System.Text.Json;
using LossLandscape.Data;
using LossLandscape.Engine;
using LossLandscape.Models;
using LossLandscape.Models.Activations;
using LossLandscape.Paths;
using static TorchSharp.torch;

namespace LossLandscape.Tests;

/// <summary>
/// Issue 21 §1: <c>losslandscape.seq/1</c>, the project's layered networks beyond MLPs (<see cref="SequentialNetwork"/>):
/// the forward pass against <c>torch.nn.Sequential</c> with the same weights, the flat layout of p against PyTorch's
/// <c>named_parameters()</c>, the model file's exact round trip and its one-line refusals, the spec of <c>--arch</c>, and
/// <c>init --arch</c>, <c>train --arch</c> and <c>info</c> from the command line. The operators and estimators are checked
/// on the convolutional cases of the shared table (<see cref="Cases.Sequentials"/>).
/// </summary>
public sealed class SequentialNetworkTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("landscape-seq-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string P(string name) => Path.Combine(_dir, name);

    private static string Digits40 => Path.Combine(AppContext.BaseDirectory, "Fixtures", "npz", "digits40.npz");

    /// <summary>An activation with no torch.nn module (smooLU): its own elementwise formula.</summary>
    private sealed class Elementwise : nn.Module<Tensor, Tensor>
    {
        private readonly Activation _activation;

        public Elementwise(Activation activation) : base(activation.Name) => _activation = activation;

        public override Tensor forward(Tensor input) => _activation.Apply(input);
    }

    /// <summary>The torch.nn layer PyTorch users would write for <paramref name="s"/>, with a batch norm's running statistics set.</summary>
    private static nn.Module<Tensor, Tensor> TorchLayer(SequentialSlice s)
    {
        long input = s.InputShape[0];
        switch (s.Layer)
        {
            case Conv2dLayer c:
                return nn.Conv2d(input, c.Out, c.Kernel, stride: c.Stride, padding: c.Padding);
            case MaxPool2dLayer m:
                return nn.MaxPool2d(m.Kernel, m.Stride);
            case AvgPool2dLayer a:
                return nn.AvgPool2d(a.Kernel, a.Stride);
            case BatchNormLayer b:
            {
                var norm = s.InputShape.Count == 3 ? (nn.Module<Tensor, Tensor>)nn.BatchNorm2d(input, b.Eps) : nn.BatchNorm1d(input, b.Eps);
                using var noGrad = no_grad();
                foreach (var (name, buffer) in norm.named_buffers())
                {
                    if (name == "running_mean")
                    {
                        buffer.copy_(tensor(b.RunningMean!.ToArray()));
                    }
                    else if (name == "running_var")
                    {
                        buffer.copy_(tensor(b.RunningVar!.ToArray()));
                    }
                }
                return norm;
            }
            case FlattenLayer:
                return nn.Flatten();
            case LinearLayer l:
                return nn.Linear(input, l.Out);
            case ActivationLayer f:
                return f.Activation.Name switch
                {
                    "relu" => nn.ReLU(),
                    "tanh" => nn.Tanh(),
                    "softplus" => nn.Softplus(),
                    "sigmoid" => nn.Sigmoid(),
                    _ => new Elementwise(f.Activation),
                };
            default:
                throw new ArgumentException(s.Layer.Type);
        }
    }

    [Fact]
    public void Forward_Equals_Torch_Sequential_With_The_Same_Weights_And_P_Is_Its_Named_Parameters()
    {
        TorchRuntime.EnsureInitialized();
        int checkedCases = 0;
        foreach (var c in Cases.Sequentials())
        {
            using var scope = NewDisposeScope();
            var network = Assert.IsType<SequentialNetwork>(c.Network);
            var module = nn.Sequential(network.Layers.Select(s => ($"l{s.Index}", TorchLayer(s))).ToArray());
            var model = new ModuleModel(module, network.InputDim, network.OutputDim, network.InputShape);
            Assert.Equal(network.ParameterCount, model.ParameterCount);
            // p in named_parameters() order: every layer's weight (or γ) then bias (or β).
            var names = module.named_parameters().Select(p => p.name).ToArray();
            Assert.Equal(network.Layers.Where(s => s.Count > 0).SelectMany(s => new[] { $"l{s.Index}.weight", $"l{s.Index}.bias" }), names);
            ParameterVector.Set(model, tensor(c.Parameters));
            var x = c.Data.InputsTensor().reshape([c.Data.Count, .. network.InputShape]);
            var expected = model.Forward(x).detach();
            var actual = network.Forward(tensor(c.Parameters), x);
            double error = CurvatureError(expected, actual);
            Assert.True(error <= Tolerances.SameNetworkInTorch, $"{c.Name}: max relative difference {error:G3}");
            // Flat rows (as a CSV gives them) are the same rows, to the network and to the residual map, which hands them over as images.
            Assert.Equal(actual.data<double>().ToArray(), network.Forward(tensor(c.Parameters), c.Data.InputsTensor()).data<double>().ToArray());
            using var own = new NetworkModel(network, c.Parameters);
            Assert.Equal(network.InputShape, own.InputShape);
            using var images = new ResidualMap(own, c.Data);
            using var flat = new ResidualMap(own, c.Data.WithInputShape([network.InputDim]));
            Assert.Equal(images.Loss(), flat.Loss());
            checkedCases++;
        }
        Assert.Equal(3, checkedCases);
    }

    private static double CurvatureError(Tensor expected, Tensor actual) =>
        (expected - actual).abs().max().item<double>() / Math.Max(expected.abs().max().item<double>(), 1e-300);

    [Fact]
    public void Model_File_Round_Trip_Is_Bit_Exact_With_Batch_Norm_Statistics_And_Scaling()
    {
        double[] awkward = [-0.0, 0.1, 1.0 / 3.0, -2.718281828459045, 1e-300, 123456789.123456789, 5e-324, double.MaxValue / 4];
        foreach (var c in Cases.Sequentials())
        {
            var network = (SequentialNetwork)c.Network;
            var scaled = network.WithScaling(new InputScaling(
                Enumerable.Range(0, network.InputDim).Select(i => awkward[i % awkward.Length] / 7).ToArray(),
                Enumerable.Range(0, network.InputDim).Select(i => 1.0 + (i / 3.0)).ToArray()));
            var p = c.Parameters.Select((v, i) => i < awkward.Length ? awkward[i] : v).ToArray();
            string text = ModelFile.Serialize(new NetworkPoint(scaled, p));
            var back = ModelFile.Parse(text, "test");
            var seq = Assert.IsType<SequentialNetwork>(back.Network);
            Assert.Equal(Bits(p), Bits(back.Parameters));
            Assert.Equal(network.InputShape, seq.InputShape);
            Assert.Equal(network.Spec, seq.Spec);
            foreach (var (x, y) in network.Layers.Zip(seq.Layers))
            {
                if (x.Layer is BatchNormLayer bx)
                {
                    var by = Assert.IsType<BatchNormLayer>(y.Layer);
                    Assert.Equal(Bits(bx.RunningMean!), Bits(by.RunningMean!));
                    Assert.Equal(Bits(bx.RunningVar!), Bits(by.RunningVar!));
                    Assert.Equal(BitConverter.DoubleToInt64Bits(bx.Eps), BitConverter.DoubleToInt64Bits(by.Eps));
                }
            }
            Assert.Equal(Bits(scaled.Scaling!.Shift), Bits(seq.Scaling!.Shift));
            Assert.Equal(text, ModelFile.Serialize(back));
            using var doc = JsonDocument.Parse(text);
            Assert.Equal(["format", "inputShape", "layers", "outputs", "input", "parameters"], doc.RootElement.EnumerateObject().Select(o => o.Name).ToArray());
            Assert.Equal(ModelFile.SeqFormat, doc.RootElement.GetProperty("format").GetString());
        }
    }

    private static long[] Bits(IEnumerable<double> values) => values.Select(BitConverter.DoubleToInt64Bits).ToArray();

    /// <summary>A model file of the given input shape, layers (JSON objects), outputs and n zeros.</summary>
    private static string SeqFile(string shape, string layers, int outputs, int n) =>
        $"{{\"format\":\"losslandscape.seq/1\",\"inputShape\":[{shape}],\"layers\":[{layers}],\"outputs\":{outputs},\"parameters\":[{string.Join(",", Enumerable.Repeat("0", n))}]}}";

    private const string Conv = "{\"type\":\"conv2d\",\"out\":2,\"kernel\":3}";
    private const string Flatten = "{\"type\":\"flatten\"}";
    private const string Linear = "{\"type\":\"linear\",\"out\":2}";

    public static TheoryData<string, string> MalformedFiles() => new()
    {
        { SeqFile("1,5,5", "{\"type\":\"conv3d\",\"out\":2,\"kernel\":3}," + Flatten + "," + Linear, 2, 0), "layer 1 of 3 (conv3d): unknown layer type; expected conv2d, maxpool2d" },
        { SeqFile("25", Conv + "," + Flatten + "," + Linear, 2, 0), "layer 1 of 3 (conv2d): needs an image input [C, H, W], but its input is flat [25]" },
        { SeqFile("1,5,5", Conv + "," + Linear, 2, 0), "layer 2 of 2 (linear): needs a flat input, but its input is the image [2, 3, 3]: put flatten before it" },
        { SeqFile("1,5,5", "{\"type\":\"conv2d\",\"out\":2,\"kernel\":7}," + Flatten + "," + Linear, 2, 0), "layer 1 of 3 (conv2d): the kernel 7 is larger than the height of the input, 5" },
        { SeqFile("1,5,5", "{\"type\":\"conv2d\",\"out\":2,\"kernel\":8,\"padding\":1}," + Flatten + "," + Linear, 2, 0), "layer 1 of 3 (conv2d): the kernel 8 is larger than the height of the padded input, 7" },
        { SeqFile("1,5,5", Conv + ",{\"type\":\"maxpool2d\",\"kernel\":4}," + Flatten + "," + Linear, 2, 0), "layer 2 of 4 (maxpool2d): the kernel 4 is larger than the height of the input, 3" },
        { SeqFile("1,5,5", "{\"type\":\"conv2d\",\"out\":2,\"kernel\":3,\"stride\":0}," + Flatten + "," + Linear, 2, 0), "layer 1 of 3 (conv2d): stride must be a positive integer, got 0" },
        { SeqFile("1,5,5", "{\"type\":\"conv2d\",\"out\":2,\"kernel\":3,\"strid\":2}," + Flatten + "," + Linear, 2, 0), "layer 1 of 3 (conv2d): unknown field 'strid'; a conv2d layer has 'out', 'kernel', 'stride', 'padding'" },
        { SeqFile("1,5,5", "{\"type\":\"conv2d\",\"out\":2}," + Flatten + "," + Linear, 2, 0), "missing layer 1 of 3 (conv2d): 'kernel'" },
        { SeqFile("1,5,5", Conv + ",{\"type\":\"batchnorm\",\"runningMean\":[0,0,0],\"runningVar\":[1,1]}," + Flatten + "," + Linear, 2, 0), "layer 2 of 4 (batchnorm): the running mean has 3 and the running variance 2 values; the input [2, 3, 3] has 2 channels" },
        { SeqFile("1,5,5", Conv + ",{\"type\":\"batchnorm\",\"runningMean\":[0,0],\"runningVar\":[1,-1]}," + Flatten + "," + Linear, 2, 0), "layer 2 of 4 (batchnorm): the running variance [1] = -1 is not a finite number ≥ 0" },
        { SeqFile("1,5,5", Conv + ",{\"type\":\"batchnorm\",\"runningMean\":[0,0],\"runningVar\":[1,1],\"eps\":0}," + Flatten + "," + Linear, 2, 0), "layer 2 of 4 (batchnorm): eps = 0 is not a finite number > 0" },
        { SeqFile("1,5,5", Conv + ",{\"type\":\"batchnorm\",\"runningVar\":[1,1]}," + Flatten + "," + Linear, 2, 0), "missing layer 2 of 4 (batchnorm): 'runningMean'" },
        { SeqFile("1,5,5", Conv + ",{\"type\":\"relu\",\"out\":3}," + Flatten + "," + Linear, 2, 0), "layer 2 of 4 (relu): unknown field 'out'; a relu layer has no field but 'type'" },
        { SeqFile("1,5,5", Conv, 2, 20), "the output of the last layer has shape [2, 3, 3]; the outputs must be flat: end with flatten or linear" },
        { SeqFile("1,5,5", Conv + "," + Flatten + "," + Linear, 3, 58), "'outputs' is 3, but the last layer gives 2" },
        { SeqFile("1,5,5", Conv + "," + Flatten + "," + Linear, 2, 57), "'parameters' has 57 numbers, but the network described needs n = 58" },
        { SeqFile("1,5", Conv + "," + Flatten + "," + Linear, 2, 58), "the input shape [1, 5] is neither [C, H, W] nor [p] with positive sizes" },
        { SeqFile("1,5,5", "", 2, 0), "the network has no layers" },
        { SeqFile("4", "{\"type\":\"relu\"}", 4, 0), "the network has no parameters: add a conv2d or linear layer" },
    };

    [Theory]
    [MemberData(nameof(MalformedFiles))]
    public void A_Malformed_Seq_File_Is_Refused_In_One_Line_Naming_The_Layer_And_The_Problem(string json, string why)
    {
        var e = Assert.Throws<ModelFormatException>(() => ModelFile.Parse(json, "m.json"));
        Assert.StartsWith("m.json: ", e.Message, StringComparison.Ordinal);
        Assert.Contains(why, e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Theory]
    [InlineData("conv:16", "layer 1 of 1 'conv:16': expected conv:OUT:KERNEL[:STRIDE[:PADDING]]")]
    [InlineData("conv:a:3,flatten,linear", "layer 1 of 3 'conv:a:3': 'a' is not a whole number")]
    [InlineData("conv:4:3,pool:2:2:2,flatten,linear", "layer 2 of 4 'pool:2:2:2': expected pool:KERNEL[:STRIDE]")]
    [InlineData("conv:4:3,softmax,flatten,linear", "layer 2 of 4 'softmax': unknown layer; expected conv:OUT:K[:STRIDE[:PAD]]")]
    [InlineData("flatten,linear,relu,linear", "layer 2 of 4 'linear': only the last layer may leave OUT out")]
    [InlineData("conv:4:3,,relu", "layer 2 of 3 is empty")]
    [InlineData(" ", "the architecture is empty")]
    [InlineData("relu:2,linear", "layer 1 of 2 'relu:2': unknown layer")]
    [InlineData("bn:4,flatten,linear", "layer 1 of 3 'bn:4': expected bn")]
    public void A_Spec_That_Does_Not_Parse_Is_Refused_Naming_The_Layer(string spec, string why)
    {
        var e = Assert.Throws<LandscapeInputException>(() => ArchitectureSpec.Parse(spec, 10));
        Assert.Contains(why, e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Theory]
    [InlineData("linear:4,relu,linear", "layer 1 of 3 (linear): needs a flat input, but its input is the image [1, 8, 8]: put flatten before it")]
    [InlineData("conv:4:9,flatten,linear", "layer 1 of 3 (conv2d): the kernel 9 is larger than the height of the input, 8")]
    [InlineData("conv:4:3", "the output of the last layer has shape [4, 6, 6]; the outputs must be flat")]
    [InlineData("flatten,conv:2:2,linear", "layer 2 of 3 (conv2d): needs an image input [C, H, W], but its input is flat [64]")]
    [InlineData("relu,flatten", "the network has no parameters")]
    public void A_Spec_Whose_Layers_Do_Not_Chain_Is_Refused_Naming_The_Layer(string spec, string why)
    {
        var e = Assert.Throws<LandscapeInputException>(() => ArchitectureSpec.Build(spec, [1, 8, 8], 10));
        Assert.Contains(why, e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void Spec_Defaults_Are_PyTorchs_And_A_Last_Linear_Gets_The_Outputs()
    {
        var network = ArchitectureSpec.Build("conv:16:3,relu,pool:2,conv:32:3:1:1,relu,avgpool:2:1,bn,flatten,linear:64,relu,linear", [1, 8, 8], 10);
        Assert.Equal("conv:16:3:1:0,relu,pool:2:2,conv:32:3:1:1,relu,avgpool:2:1,bn,flatten,linear:64,relu,linear:10", network.Spec);
        Assert.Equal([16L, 6, 6], network.Layers[0].OutputShape);
        Assert.Equal([16L, 3, 3], network.Layers[2].OutputShape);
        Assert.Equal([32L, 2, 2], network.Layers[5].OutputShape);
        Assert.Equal(10, network.OutputDim);
        var bn = Assert.IsType<BatchNormLayer>(network.Layers[6].Layer);
        Assert.Equal(Enumerable.Repeat(0.0, 32), bn.RunningMean!);
        Assert.Equal(Enumerable.Repeat(1.0, 32), bn.RunningVar!);
        Assert.Equal(1e-5, bn.Eps);
        // n = (16·9 + 16) + (32·16·9 + 32) + 2·32 + (64·128 + 64) + (10·64 + 10)
        Assert.Equal(160 + 4640 + 64 + 8256 + 650, network.ParameterCount);
        // He initialization: γ = 1, β = 0, biases 0; deterministic for a seed.
        var p = network.InitialParameters(3);
        Assert.Equal(p, network.InitialParameters(3));
        Assert.All(p.Skip(network.Layers[6].Offset).Take(32), v => Assert.Equal(1.0, v));
        Assert.All(p.Skip(network.Layers[6].Offset + 32).Take(32), v => Assert.Equal(0.0, v));
        Assert.All(p.Skip(network.Layers[0].Offset + 144).Take(16), v => Assert.Equal(0.0, v));
    }

    [Fact]
    public void Filter_Normalization_Scales_Each_Channel_And_Unit_To_The_Points_Norm()
    {
        TorchRuntime.EnsureInitialized();
        var c = Cases.Sequentials().First();
        var network = (SequentialNetwork)c.Network;
        using var scope = NewDisposeScope();
        using var model = new NetworkModel(network, c.Parameters);
        var point = tensor(c.Parameters);
        var direction = tensor(SeededNormal.Vector(new Random(4), network.ParameterCount));
        var normalized = LossSlice.FilterNormalize(model, direction, point, ignoreBias: false);
        foreach (var layer in network.Layers.Where(l => l.Count > 0))
        {
            long filters = layer.BiasCount;
            Tensor Filters(Tensor v) => cat([v.narrow(0, layer.Offset, layer.WeightCount).view(filters, -1), v.narrow(0, layer.Offset + layer.WeightCount, filters).view(filters, 1)], 1);
            var expected = Filters(point).norm(1);
            var actual = Filters(normalized).norm(1);
            Assert.True(CurvatureError(expected, actual) <= Tolerances.ExactAgreement, layer.Layer.Type);
        }
        var ignored = LossSlice.FilterNormalize(model, direction, point, ignoreBias: true);
        var bn = network.Layers.Single(l => l.Layer is BatchNormLayer);
        Assert.Equal(0.0, ignored.narrow(0, bn.Offset, bn.Count).abs().max().item<double>());
    }

    [Fact]
    public void Endpoints_With_Other_Batch_Norm_Statistics_Are_Different_Networks()
    {
        var c = Cases.Sequentials().First();
        var a = (SequentialNetwork)c.Network;
        var layers = a.Layers.Select(l => l.Layer is BatchNormLayer b ? b with { RunningMean = [0.3, -0.2, 0.2] } : l.Layer).ToArray();
        var b = new SequentialNetwork(a.InputShape, layers);
        var e = Assert.Throws<LandscapeInputException>(() => EndpointCheck.RequireSameArchitecture(new NetworkPoint(a, c.Parameters), new NetworkPoint(b, c.Parameters)));
        Assert.Contains("the batch-norm statistics differ", e.Message, StringComparison.Ordinal);
        Assert.Null(EndpointCheck.Difference(a, new SequentialNetwork(a.InputShape, a.Layers.Select(l => l.Layer).ToArray())));
    }

    [Fact]
    public void Init_Train_And_Info_Make_And_Show_A_Cnn_From_The_Command_Line()
    {
        const string arch = "conv:4:3:1:1,relu,pool:2,bn,conv:6:3,tanh,flatten,linear:8,smoolu,linear";
        var (code, output, err) = CliTests.Run("init", "--data", Digits40, "--arch", arch, "--seed", "2", "--out", P("m.json"));
        Assert.True(code == 0, output + err);
        Assert.Contains("[1, 8, 8] → conv:4:3:1:1,relu,pool:2:2,bn,conv:6:3:1:0,tanh,flatten,linear:8,smoolu,linear:10", output, StringComparison.Ordinal);
        var point = ModelFile.Load(P("m.json"));
        var network = Assert.IsType<SequentialNetwork>(point.Network);
        Assert.Equal([1L, 8, 8], network.InputShape);
        Assert.Equal(network.InitialParameters(2), point.Parameters);

        (code, output, err) = CliTests.Run("info", "--model", P("m.json"), "--json", P("info.json"));
        Assert.True(code == 0, output + err);
        foreach (var line in new[] { "conv2d 1 → 4, 3 × 3, stride 1, padding 1", "4 × 8 × 8", "max pool 2 × 2, stride 2", "batch norm 2d (4 channels", "linear 8 → 10", "n = 560" })
        {
            Assert.Contains(line, output, StringComparison.Ordinal);
        }
        using (var info = JsonDocument.Parse(File.ReadAllText(P("info.json"))))
        {
            var root = info.RootElement;
            Assert.Equal(ModelFile.SeqFormat, root.GetProperty("format").GetString());
            Assert.Equal(560, root.GetProperty("n").GetInt32()); // conv 4·9 + 4, bn 2·4, conv 6·4·9 + 6, linear 8·24 + 8, linear 10·8 + 10
            var layers = root.GetProperty("sequence");
            Assert.Equal(10, layers.GetArrayLength());
            Assert.Equal(network.Layers.Sum(l => l.Count), layers.EnumerateArray().Sum(l => l.GetProperty("parameters").GetInt32()));
            Assert.Equal([6L, 2, 2], layers[4].GetProperty("outputShape").EnumerateArray().Select(e => e.GetInt64()).ToArray());
        }

        (code, output, err) = CliTests.Run("train", "--data", Digits40, "--arch", arch, "--optimizer", "gd", "--steps", "3", "--out", P("t.json"), "--json", P("train.json"));
        Assert.True(code == 0, output + err);
        using (var train = JsonDocument.Parse(File.ReadAllText(P("train.json"))))
        {
            Assert.True(train.RootElement.GetProperty("bestLoss").GetDouble() < train.RootElement.GetProperty("initialLoss").GetDouble());
            Assert.Equal(560, train.RootElement.GetProperty("n").GetInt32());
        }
        Assert.IsType<SequentialNetwork>(ModelFile.Load(P("t.json")).Network);
        (code, output, err) = CliTests.Run("evaluate", "--model", P("t.json"), "--data", Digits40);
        Assert.True(code == 0, output + err);
    }

    [Theory]
    [InlineData("init --arch conv:16", "--arch: layer 1 of 1 'conv:16': expected conv:OUT:KERNEL[:STRIDE[:PADDING]]")]
    [InlineData("init --arch conv:4:9,flatten,linear", "layer 1 of 3 (conv2d): the kernel 9 is larger than the height of the input, 8")]
    [InlineData("init --arch linear:4,linear", "layer 1 of 2 (linear): needs a flat input, but its input is the image [1, 8, 8]: put flatten before it")]
    [InlineData("init --arch flatten,linear --hidden 8", "--arch gives the whole network: --hidden and --activation do not apply with it")]
    [InlineData("train --arch flatten,linear --activation tanh", "--arch gives the whole network: --hidden and --activation do not apply with it")]
    [InlineData("train --arch flatten,linear --init m.json", "--arch and --init both give the network: use one")]
    public void A_Bad_Arch_Is_A_One_Line_Refusal_With_Exit_Code_2(string command, string why)
    {
        File.WriteAllText(P("m.json"), "{}");
        var args = command.Split(' ').Select(a => a == "m.json" ? P("m.json") : a).ToList();
        args.InsertRange(1, ["--data", Digits40, "--out", P("out.json")]);
        var (code, output, err) = CliTests.Run([.. args]);
        Assert.True(code == 2, $"exit {code}: {output}{err}");
        Assert.Contains(why, err, StringComparison.Ordinal);
        Assert.Single(err.TrimEnd().Split('\n'));
        Assert.False(File.Exists(P("out.json")));
    }

    [Fact]
    public void Info_On_A_Malformed_Seq_File_Is_A_One_Line_Refusal_With_Exit_Code_2()
    {
        File.WriteAllText(P("bad.json"), SeqFile("1,5,5", Conv + "," + Linear, 2, 0));
        var (code, output, err) = CliTests.Run("info", "--model", P("bad.json"));
        Assert.True(code == 2, $"exit {code}: {output}{err}");
        Assert.Contains("layer 2 of 2 (linear): needs a flat input", err, StringComparison.Ordinal);
        Assert.Single(err.TrimEnd().Split('\n'));
    }
}
