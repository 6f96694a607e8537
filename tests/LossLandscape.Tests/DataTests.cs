using LossLandscape.Data;

namespace LossLandscape.Tests;

public class DataTests
{
    [Fact]
    public void Csv_With_Repeated_Targets_Gives_Regression_Outputs()
    {
        var table = CsvTable.Parse("a,b,c,d\n1,2,3,4\n5,6,7,8\n", "t.csv");
        var data = DatasetLoader.FromTable(table, TargetSpec.Regression("d", "b"));
        Assert.Equal((2, 2, 2), (data.Count, data.InputDim, data.OutputDim));
        Assert.Equal(new[] { "a", "c" }, data.InputNames);
        Assert.Equal(new[] { "d", "b" }, data.TargetNames);
        Assert.Equal(new[] { 8.0, 6.0 }, data.TargetRow(1));
        Assert.Equal(new[] { 5.0, 7.0 }, data.InputRow(1));
    }

    [Fact]
    public void One_Hot_Expands_A_Class_Column_In_Numeric_Order()
    {
        var table = CsvTable.Parse("x,\"label, quoted\"\n0.5,10\n1.5,2\n2.5,10\n", "t.csv");
        var data = DatasetLoader.FromTable(table, TargetSpec.Classes("label, quoted"));
        Assert.Equal(2, data.OutputDim);
        Assert.Equal(new[] { "label, quoted=2", "label, quoted=10" }, data.TargetNames);
        Assert.Equal(new[] { 0.0, 1.0 }, data.TargetRow(0));
        Assert.Equal(new[] { 1.0, 0.0 }, data.TargetRow(1));
    }

    [Fact]
    public void Embedded_Datasets_Have_Their_Documented_Sizes()
    {
        var digits = DatasetLoader.Load("builtin:digits", TargetSpec.Classes("digit"));
        Assert.Equal((1797, 64, 10), (digits.Count, digits.InputDim, digits.OutputDim));
        var iris = DatasetLoader.Load("builtin:iris", TargetSpec.Classes("species"));
        Assert.Equal((150, 4, 3), (iris.Count, iris.InputDim, iris.OutputDim));
        // The README of the data: rows 102 and 143 (1-based) are the same point.
        Assert.Equal([[101, 142]], iris.FindDuplicateInputs());
        var diabetes = DatasetLoader.Load("builtin:diabetes", TargetSpec.LastColumn);
        Assert.Equal((442, 10, 1), (diabetes.Count, diabetes.InputDim, diabetes.OutputDim));
        Assert.Empty(digits.FindDuplicateInputs());
    }

    [Fact]
    public void Synthetic_Data_Is_Deterministic_For_A_Seed()
    {
        var a = DatasetLoader.Load("synthetic:20,3,2,7", TargetSpec.LastColumn);
        var b = SyntheticData.Gaussian(20, 3, 2, 7);
        var c = SyntheticData.Gaussian(20, 3, 2, 8);
        Assert.Equal(a.InputRow(19), b.InputRow(19));
        Assert.NotEqual(a.InputRow(19), c.InputRow(19));
        Assert.Equal(2, a.OutputDim);
    }

    [Theory]
    [InlineData("a,b\n1,2\n3\n", "t.csv:3: row has 1 fields, the header has 2")]
    [InlineData("a,b\n1,x\n", "t.csv:2:2: 'x' in column 'b' is not a number")]
    [InlineData("a,b\n1,NaN\n", "t.csv:2:2: 'NaN' in column 'b' is not a finite number")]
    [InlineData("a,b\n-Infinity,1\n", "t.csv:2:1: '-Infinity' in column 'a' is not a finite number")]
    [InlineData("a,b\n", "t.csv: no data rows")]
    [InlineData("", "t.csv: empty file")]
    public void Bad_Csv_Names_File_Line_And_Column(string text, string message)
    {
        var e = Assert.Throws<DataFormatException>(() => DatasetLoader.FromTable(CsvTable.Parse(text, "t.csv"), TargetSpec.LastColumn));
        Assert.StartsWith(message, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }
}
