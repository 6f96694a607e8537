using System.Text.Json;
using LossLandscape.Data;
using LossLandscape.Engine;
using LossLandscape.Models;
using static TorchSharp.torch;

namespace LossLandscape.Tests;

/// <summary>
/// Issue 20 §2: a data source read from its file batch by batch (<see cref="ArrayFileSource"/>, NumPy's .npz), rows of any
/// shape, and every full-data quantity on it equal to the same rows held in memory. The fixtures in Fixtures/npz were
/// written by NumPy 1.24 itself (make_npz.py there); the case table's data is written by <see cref="ArrayFileSource.SaveNpz"/>.
/// </summary>
public sealed class ArrayFileSourceTests
{
    private static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", "npz", name);

    private static void Equal(Tensor expected, Tensor actual)
    {
        Assert.Equal(expected.shape, actual.shape);
        var a = expected.data<double>().ToArray();
        var b = actual.data<double>().ToArray();
        int k = Enumerable.Range(0, a.Length).FirstOrDefault(i => BitConverter.DoubleToInt64Bits(a[i]) != BitConverter.DoubleToInt64Bits(b[i]), -1);
        Assert.True(k < 0, $"value {k}: {(k < 0 ? 0 : a[k])} expected, {(k < 0 ? 0 : b[k])} read");
    }

    [Fact]
    public void NumPy_Image_Rows_Read_Per_Batch_Equal_The_Csv_Rows_They_Were_Made_From()
    {
        TorchRuntime.EnsureInitialized();
        var csv = DatasetLoader.Load("builtin:digits", TargetSpec.Classes("digit")).Take(40);
        using var npz = (ArrayFileSource)DatasetLoader.Open(Fixture("digits40.npz"), TargetSpec.LastColumn);
        Assert.False(npz.Resident);
        Assert.Equal(40, npz.Count);
        Assert.Equal([1L, 8, 8], npz.InputShape);
        Assert.Equal(64, npz.InputDim);
        // Integer labels (d,) become one-hot targets over the sorted classes, as --one-hot makes them of the CSV column.
        Assert.Equal(csv.OutputDim, npz.OutputDim);
        Assert.Equal(csv.TargetNames.Select(n => n.Replace("digit=", "y=", StringComparison.Ordinal)), npz.TargetNames);
        var (allX, allY) = csv.Read(0, 40);
        foreach (var (start, count) in new (long, long)[] { (0, 40), (0, 1), (13, 7), (39, 1) })
        {
            using var scope = NewDisposeScope();
            var (x, y) = npz.Read(start, count);
            Equal(allX.narrow(0, start, count).reshape(count, 1, 8, 8), x);
            Equal(allY.narrow(0, start, count), y);
        }
        var (rx, ry) = npz.ReadRows([5, 0, 39, 5]);
        var index = tensor(new long[] { 5, 0, 39, 5 });
        Equal(allX.index_select(0, index).reshape(4, 1, 8, 8), rx);
        Equal(allY.index_select(0, index), ry);
        // Loaded into memory, whole or as a view of some rows: the same values (a view reads only its own rows).
        var loaded = npz.Load();
        Equal(npz.Read(0, 40).Inputs, loaded.Read(0, 40).Inputs);
        Equal(npz.Read(0, 40).Targets, loaded.Read(0, 40).Targets);
        using (var view = (DataView)DataView.Of(ArrayFileSource.OpenNpz(Fixture("digits40.npz")), "13:20", null))
        {
            var part = view.Load();
            Assert.Equal(7, part.Count);
            Equal(npz.Read(13, 7).Inputs, part.Read(0, 7).Inputs);
            Equal(npz.Read(13, 7).Targets, part.Read(0, 7).Targets);
        }
        // The compressed file (numpy.savez_compressed) is read per batch too, from a decompressed copy, with the same rows.
        using var compressed = (ArrayFileSource)DatasetLoader.Open(Fixture("digits40_compressed.npz"), TargetSpec.LastColumn);
        Assert.False(compressed.Resident);
        Equal(npz.Read(0, 40).Inputs, compressed.Read(0, 40).Inputs);
        Equal(npz.Read(0, 40).Targets, compressed.Read(0, 40).Targets);
    }

    [Theory]
    [InlineData("formula_f32.npz", 2)]
    [InlineData("formula_f16_be.npz", 2)]
    [InlineData("formula_vector_y.npz", 1)]
    public void Every_Element_Type_Converts_To_The_Exact_Float64_Value(string file, int outputs)
    {
        TorchRuntime.EnsureInitialized();
        using var npz = ArrayFileSource.OpenNpz(Fixture(file));
        Assert.Equal(30, npz.Count);
        Assert.Equal(outputs, npz.OutputDim);
        var (x, y) = npz.Read(0, 30);
        var xs = x.data<double>().ToArray();
        var ys = y.data<double>().ToArray();
        for (int i = 0; i < 30; i++)
        {
            for (int j = 0; j < 6; j++)
            {
                Assert.Equal((((5 * i) + j) / 8.0) - 3.0, xs[(i * 6) + j]);
            }
            for (int k = 0; k < outputs; k++)
            {
                Assert.Equal((i - (2 * k)) / 4.0, ys[(i * outputs) + k]);
            }
        }
        Assert.Equal(29 / 4.0, npz.MaxAbsTarget());
    }

    [Theory]
    [InlineData("fortran.npz", "Fortran order")]
    [InlineData("no_y.npz", "no array 'y' (the file holds x, targets)")]
    [InlineData("short_y.npz", "y has shape (29, 2); with 30 rows of x it must be (30,) or (30, ℓ)")]
    [InlineData("nan.npz", "x[7] has the value NaN at position 4 of its row; data values must be finite")]
    [InlineData("negative_label.npz", "y[0] is the class label -1, out of range; class labels are 0 … C − 1")]
    public void A_File_That_Cannot_Be_Used_Is_Refused_Naming_Why(string file, string why)
    {
        var e = Assert.Throws<DataFormatException>(() => ArrayFileSource.OpenNpz(Fixture(file)).Dispose());
        Assert.Contains(why, e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Theory]
    [InlineData("digits40")]
    [InlineData("digits40gz")]
    public void Idx_Files_Plain_Or_Gzipped_Give_One_Channel_Images_With_Pixels_Divided_By_255(string folder)
    {
        TorchRuntime.EnsureInitialized();
        var csv = DatasetLoader.Load("builtin:digits", TargetSpec.Classes("digit")).Take(40);
        string directory = Path.Combine(AppContext.BaseDirectory, "Fixtures", "idx", folder);
        foreach (var (split, count) in new[] { ("train", 40), ("test", 10) })
        {
            using var idx = (ArrayFileSource)DatasetLoader.Open("idx:" + directory, TargetSpec.LastColumn, split: split);
            Assert.False(idx.Resident);
            Assert.Equal(count, idx.Count);
            Assert.Equal([1L, 8, 8], idx.InputShape);
            Assert.Equal(Enumerable.Range(0, 10).Select(c => $"labels={c}"), idx.TargetNames);
            var (x, y) = idx.Read(0, count);
            var (cx, cy) = csv.Read(0, count);
            Equal((cx / 255.0).reshape(count, 1, 8, 8), x);
            Equal(cy, y);
            var (rx, _) = idx.ReadRows([count - 1, 2]);
            Equal(x.index_select(0, tensor(new long[] { count - 1, 2 })), rx);
        }
    }

    [Theory]
    [InlineData("badmagic", "train-images-idx3-ubyte: not an IDX file (magic number 0x03080000")]
    [InlineData("short", "train-images-idx3-ubyte: 'images' of shape (40, 8, 8) and type uint8 needs 2576 bytes, the file holds 2476 (is it cut short?)")]
    [InlineData("missing", "no train-images-idx3-ubyte (or train-images-idx3-ubyte.gz) in")]
    public void A_Malformed_Idx_Directory_Is_Refused_In_One_Line_Naming_The_File(string folder, string why)
    {
        string directory = Path.Combine(AppContext.BaseDirectory, "Fixtures", "idx", folder);
        if (folder == "missing")
        {
            directory = Path.Combine(AppContext.BaseDirectory, "Fixtures", "npz");
        }
        var e = Assert.Throws<DataFormatException>(() => ((IDisposable)DatasetLoader.Open("idx:" + directory, TargetSpec.LastColumn)).Dispose());
        Assert.Contains(why, e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void A_View_Takes_Rows_A_To_B_In_Another_Shape_Without_Copying_And_Refuses_Bad_Ranges_In_One_Line()
    {
        TorchRuntime.EnsureInitialized();
        var csv = DatasetLoader.Load("builtin:digits", TargetSpec.Classes("digit"));
        var view = DataView.Of(csv, "5:15", "1,8,8");
        Assert.Equal(10, view.Count);
        Assert.Equal([1L, 8, 8], view.InputShape);
        var (x, y) = view.Read(2, 3);
        var (cx, cy) = csv.Read(7, 3);
        Equal(cx.reshape(3, 1, 8, 8), x);
        Equal(cy, y);
        var (rx, _) = view.ReadRows([9, 0]);
        Equal(csv.ReadRows([14, 5]).Inputs.reshape(2, 1, 8, 8), rx);
        Assert.Equal(40, DataView.Of(csv, "40", null).Count);
        Assert.Same(csv, DataView.Of(csv, null, null));
        Assert.Equal(10, view.Load().Count);
        foreach (var (rows, shape, why) in new[]
        {
            ("0:0", null, "are not N (the first N rows) or A:B"),
            ("9:3", null, "are not N (the first N rows) or A:B"),
            ("x", null, "are not N (the first N rows) or A:B"),
            ("5000", null, "has only 1797 rows"),
            ((string?)null, "1,8,9", "holds 72 values, but the rows of builtin:digits have 64"),
            (null, "1,-8,8", "is not a list of positive sizes"),
        })
        {
            var e = Assert.Throws<LandscapeInputException>(() => DataView.Of(csv, rows, shape));
            Assert.Contains(why, e.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Csv_Rows_Viewed_As_Images_Give_The_Numbers_Of_The_Same_Images_From_An_Npz()
    {
        var dir = Directory.CreateTempSubdirectory("landscape-view-").FullName;
        try
        {
            string model = Path.Combine(dir, "cnn.json");
            string[] npz = ["--data", Fixture("digits40.npz")];
            var init = CliTests.Run(["init", .. npz, "--arch", "conv:2:3,relu,pool:2,flatten,linear", "--seed", "4", "--out", model]);
            Assert.True(init.Code == 0, init.Err);
            var values = new List<double>();
            foreach (var data in new[] { npz, ["--data", "builtin:digits", "--one-hot", "digit", "--rows", "40", "--input-shape", "1,8,8"] })
            {
                string json = Path.Combine(dir, $"{values.Count}.json");
                var (code, _, err) = CliTests.Run(["evaluate", "--model", model, .. data, "--loss", "cross-entropy", "--batch-size", "7", "--json", json]);
                Assert.True(code == 0, err);
                using var doc = JsonDocument.Parse(File.ReadAllText(json));
                values.Add(doc.RootElement.GetProperty("loss").GetDouble());
                Assert.Equal(40, doc.RootElement.GetProperty("d").GetInt32());
            }
            Assert.Equal(values[0], values[1], 14);
            var bad = CliTests.Run(["evaluate", "--model", model, "--data", "builtin:digits", "--one-hot", "digit", "--rows", "40:30"]);
            Assert.Equal(2, bad.Code);
            Assert.Single(bad.Err.Trim().Split('\n'));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Builtin_Fashion_Mnist_Reads_Debians_Package_Or_Names_The_Command_That_Installs_It()
    {
        TorchRuntime.EnsureInitialized();
        if (!Directory.Exists(DatasetLoader.FashionMnistDirectory))
        {
            var e = Assert.Throws<DataFormatException>(() => DatasetLoader.Open("builtin:fashion-mnist", TargetSpec.LastColumn));
            Assert.Contains("apt-get install dataset-fashion-mnist", e.Message, StringComparison.Ordinal);
            return;
        }
        using var train = (ArrayFileSource)DatasetLoader.Open("builtin:fashion-mnist", TargetSpec.LastColumn);
        Assert.Equal(60_000, train.Count);
        Assert.Equal([1L, 28, 28], train.InputShape);
        Assert.Equal(10, train.OutputDim);
        using var test = (ArrayFileSource)DatasetLoader.Open("builtin:fashion-mnist", TargetSpec.LastColumn, split: "test");
        Assert.Equal(10_000, test.Count);
        var (x, _) = test.Read(9_999, 1);
        Assert.InRange(x.min().item<double>(), 0.0, 1.0);
        Assert.InRange(x.max().item<double>(), 0.0, 1.0);
    }

    [Fact]
    public void Every_Full_Data_Quantity_On_Rows_Read_From_The_File_Equals_The_Rows_In_Memory_For_Every_Batch_Size()
    {
        TorchRuntime.EnsureInitialized();
        var dir = Directory.CreateTempSubdirectory("landscape-npz-").FullName;
        try
        {
            int checkedCases = 0;
            foreach (var c in Cases.All())
            {
                using var scope = NewDisposeScope();
                string path = Path.Combine(dir, $"case{checkedCases}.npz");
                ArrayFileSource.SaveNpz(c.Data, path, batchRows: 2);
                using var file = ArrayFileSource.OpenNpz(path);
                Assert.False(file.Resident);
                using var model = new NetworkModel(c.Network, c.Parameters);
                int d = c.Data.Count;
                using var memory = new ResidualMap(model, c.Data, batchSize: d);
                var generator = new Generator(17);
                var v = randn(memory.ParameterCount, 2, dtype: ScalarType.Float64, generator: generator);
                var w = randn(memory.Constraints, 2, dtype: ScalarType.Float64, generator: generator);
                var rows = new long[] { d - 1, 0, d / 2 };
                var expected = new (string What, Tensor Value, Func<ResidualMap, Tensor> Of)[]
                {
                    ("(L, ∇L)", Joined(memory.LossAndGradient()), m => Joined(m.LossAndGradient())),
                    ("rows' (L, ∇L)", Joined(memory.RowsLossAndGradient(rows)), m => Joined(m.RowsLossAndGradient(rows))),
                    ("H", memory.Residuals(), m => m.Residuals()),
                    ("∇²L V", memory.HessianTimes(v), m => m.HessianTimes(v)),
                    ("G V", memory.GaussNewtonTimes(v), m => m.GaussNewtonTimes(v)),
                    ("J V", memory.JacobianTimes(v), m => m.JacobianTimes(v)),
                    ("Jᵀ W", memory.JacobianTransposeTimes(w), m => m.JacobianTransposeTimes(w)),
                    ("J", memory.Jacobian(), m => m.Jacobian()),
                    ("JJᵀ", Geometry.GramMatrix.Compute(memory), m => Geometry.GramMatrix.Compute(m)),
                };
                Assert.Equal(memory.MaxAbsTarget, new ResidualMap(model, file).MaxAbsTarget);
                for (int batch = 1; batch <= d; batch++)
                {
                    using var batchScope = NewDisposeScope();
                    using var streamed = new ResidualMap(model, file, batchSize: batch);
                    foreach (var (what, value, of) in expected)
                    {
                        BatchSizeTests.Close(value, of(streamed), $"{c.Name}, B = {batch}: {what}");
                    }
                }
                checkedCases++;
            }
            Assert.True(checkedCases >= 20, $"only {checkedCases} cases");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }

        static Tensor Joined((double Loss, Tensor Gradient) r) => cat([tensor(r.Loss).reshape(1), r.Gradient], 0);
    }

    [Theory]
    [InlineData("evaluate")]
    [InlineData("spectrum")]
    [InlineData("trace")]
    [InlineData("certify")]
    [InlineData("slice")]
    public void A_Command_On_An_Npz_File_Read_Per_Batch_Writes_The_Numbers_Of_The_Same_Rows_In_Memory(string command)
    {
        var dir = Directory.CreateTempSubdirectory("landscape-npz-cli-").FullName;
        try
        {
            string source = "synthetic:12,3,1,4", npz = Path.Combine(dir, "rows.npz"), model = Path.Combine(dir, "m.json");
            ArrayFileSource.SaveNpz(DatasetLoader.Load(source, TargetSpec.LastColumn), npz);
            var trained = CliTests.Run(["train", "--data", source, "--hidden", "6", "--optimizer", "gauss-newton", "--steps", "40", "--seed", "1", "--out", model]);
            Assert.True(trained.Code == 0, trained.Err);
            string[] args = command switch
            {
                "evaluate" => ["evaluate", "--model", model],
                "spectrum" => ["spectrum", "--model", model, "--k", "3", "--seed", "2"],
                "trace" => ["trace", "--model", model, "--method", "hutchinson", "--probes", "8", "--seed", "3"],
                "certify" => ["certify", "--model", model],
                _ => ["slice", "--model", model, "--directions", "random", "--dims", "1", "--grid", "5", "--out", Path.Combine(dir, "s.svg")],
            };
            var numbers = new List<double[]>();
            foreach (var (data, batch) in new[] { (source, (string?)null), (npz, "1"), (npz, "5"), (npz, null) })
            {
                string json = Path.Combine(dir, $"{numbers.Count}.json");
                var (code, _, err) = CliTests.Run([.. args, "--data", data, .. batch is null ? Array.Empty<string>() : ["--batch-size", batch], "--json", json]);
                Assert.True(code == 0, err);
                using var doc = JsonDocument.Parse(File.ReadAllText(json));
                numbers.Add(Numbers(doc.RootElement).ToArray());
            }
            for (int k = 1; k < numbers.Count; k++)
            {
                Assert.Equal(numbers[0].Length, numbers[k].Length);
                for (int i = 0; i < numbers[0].Length; i++)
                {
                    double a = numbers[0][i], b = numbers[k][i];
                    Assert.True(Math.Abs(a - b) <= Tolerances.ExactAgreement * Math.Max(1.0, Math.Abs(a)), $"{command}, run {k}, number {i}: {a} vs {b}");
                }
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>The numbers of a JSON document in document order, leaving out wall times (keys ending in "seconds").</summary>
    private static IEnumerable<double> Numbers(JsonElement element, string key = "")
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Number when !key.EndsWith("seconds", StringComparison.OrdinalIgnoreCase):
                yield return element.GetDouble();
                break;
            case JsonValueKind.Object:
                foreach (var p in element.EnumerateObject())
                {
                    foreach (double v in Numbers(p.Value, p.Name))
                    {
                        yield return v;
                    }
                }
                break;
            case JsonValueKind.Array:
                foreach (var item in element.EnumerateArray())
                {
                    foreach (double v in Numbers(item, key))
                    {
                        yield return v;
                    }
                }
                break;
        }
    }

    [Fact]
    public void A_Module_Taking_Images_Gets_Rows_Of_Any_Shape_From_A_Tensor_Or_A_File()
    {
        TorchRuntime.EnsureInitialized();
        using var scope = NewDisposeScope();
        var generator = new Generator(3);
        var images = rand(10, 1, 4, 4, dtype: ScalarType.Float64, generator: generator);
        var targets = randn(10, 2, dtype: ScalarType.Float64, generator: generator);
        var data = new Dataset(images, targets);
        Assert.Equal([1L, 4, 4], data.InputShape);
        Assert.Equal(16, data.InputDim);
        manual_seed(5);
        var module = nn.Sequential(nn.Conv2d(1, 2, 3, dtype: ScalarType.Float64), nn.ReLU(), nn.Flatten(), nn.Linear(8, 2, dtype: ScalarType.Float64));
        using var landscape = Landscape.For(module, data);
        using var noGrad = no_grad();
        var direct = (module.call(images) - targets).square().sum().item<double>();
        Assert.Equal(direct, landscape.Map.Loss(), 12);
        // The same rows from a file, read per batch.
        var path = Path.Combine(Path.GetTempPath(), $"landscape-images-{Environment.ProcessId}.npz");
        try
        {
            ArrayFileSource.SaveNpz(data, path);
            using var file = ArrayFileSource.OpenNpz(path);
            Assert.Equal([1L, 4, 4], file.InputShape);
            using var map = new ResidualMap(landscape.Model, file, batchSize: 3);
            Assert.True(Math.Abs(direct - map.Loss()) <= 1e-12 * Math.Max(1, direct));
        }
        finally
        {
            File.Delete(path);
        }
    }
}
