using LossLandscape;
using LossLandscape.Data;
using LossLandscape.Engine;
using static TorchSharp.torch;

namespace LossLandscape.Tests;

/// <summary>The ways to make a <see cref="Dataset"/> in C#: arrays, jagged rows, tensors.</summary>
public class DatasetConstructionTests
{
    private static readonly double[,] X = { { 0.5, -1.0 }, { 2.0, 0.25 }, { -3.5, 1e-3 } };
    private static readonly double[,] Y = { { 1.0, 0.0, 2.0 }, { -0.5, 4.0, 1.0 }, { 0.0, 0.125, -2.0 } };

    private static double[][] Jagged(double[,] a) =>
        Enumerable.Range(0, a.GetLength(0)).Select(i => Enumerable.Range(0, a.GetLength(1)).Select(j => a[i, j]).ToArray()).ToArray();

    private static void AssertSame(Dataset expected, Dataset actual)
    {
        Assert.Equal((expected.Count, expected.InputDim, expected.OutputDim), (actual.Count, actual.InputDim, actual.OutputDim));
        for (int i = 0; i < expected.Count; i++)
        {
            Assert.Equal(expected.InputRow(i), actual.InputRow(i));
            Assert.Equal(expected.TargetRow(i), actual.TargetRow(i));
        }
    }

    [Fact]
    public void Dataset_From_Jagged_Rows_Equals_The_Array_One()
    {
        AssertSame(new Dataset(X, Y), new Dataset(Jagged(X), Jagged(Y)));
    }

    [Fact]
    public void Dataset_From_Tensors_Equals_The_Array_One()
    {
        TorchRuntime.EnsureInitialized();
        using var scope = NewDisposeScope();
        var expected = new Dataset(X, Y);
        AssertSame(expected, new Dataset(tensor(X), tensor(Y)));

        // Targets as a vector of d values are one target column.
        var column = new double[,] { { 1.0 }, { -0.5 }, { 0.0 } };
        AssertSame(new Dataset(X, column), new Dataset(tensor(X), tensor(new[] { 1.0, -0.5, 0.0 })));

        // float32 tensors: every float32 is a float64, so the values are those of the float32 inputs.
        var single = new Dataset(tensor(X).to(float32), tensor(Y).to(float32));
        Assert.Equal(X.Cast<double>().Select(v => (double)(float)v), Enumerable.Range(0, 3).SelectMany(single.InputRow));
    }

    [Fact]
    public void Bad_Shapes_And_Values_Are_Refused_In_One_Line()
    {
        TorchRuntime.EnsureInitialized();
        using var scope = NewDisposeScope();
        var messages = new[]
        {
            Assert.Throws<LandscapeInputException>(() => new Dataset([[1.0, 2.0], [3.0]], [[1.0], [2.0]])).Message,
            Assert.Throws<LandscapeInputException>(() => new Dataset([[1.0], null!], [[1.0], [2.0]])).Message,
            Assert.Throws<LandscapeInputException>(() => new Dataset(Jagged(X), [[1.0], [2.0]])).Message,
            Assert.Throws<LandscapeInputException>(() => new Dataset(tensor(new[] { 1.0, 2.0, 3.0 }), tensor(Y))).Message,
            Assert.Throws<LandscapeInputException>(() => new Dataset(tensor(X), zeros(3, 3, 1))).Message,
            Assert.Throws<LandscapeInputException>(() => new Dataset(tensor(X).to(complex128), tensor(Y))).Message,
            Assert.Throws<LandscapeInputException>(() => new Dataset(tensor(new[] { 1.0, double.NaN, 3.0, 4.0 }, [2, 2]), tensor(new[] { 1.0, 2.0 }))).Message,
            Assert.Throws<LandscapeInputException>(() => new Dataset(new double[0][], new double[0][])).Message,
        };
        Assert.Equal("inputs row 1 has 1 values, row 0 has 2", messages[0]);
        Assert.Equal("inputs row 1 is null", messages[1]);
        Assert.Equal("3 input rows but 2 target rows", messages[2]);
        Assert.Equal("inputs must be a d × p tensor, or d × s₁ × … × s_k for rows of shape [s₁, …, s_k]; got shape [3]", messages[3]);
        Assert.Equal("targets must be a d × ℓ tensor or a vector of d values; got shape [3, 3, 1]", messages[4]);
        Assert.Equal("inputs is ComplexFloat64; a dataset holds real values", messages[5]);
        Assert.Equal("inputs[0, 1] is NaN; dataset values must be finite (row, column from 0)", messages[6]);
        Assert.Equal("a dataset needs at least one row", messages[7]);
    }
}
