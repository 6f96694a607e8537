using System.Text.Json;
using LossLandscape.Cli;

namespace LossLandscape.Tests;

/// <summary>The CLI in-process: exit codes, output and written files.</summary>
public sealed class CliTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("landscape-cli-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    internal static (int Code, string Out, string Err) Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = LandscapeApp.Run(args, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    private string File(string name, string text)
    {
        var path = Path.Combine(_dir, name);
        System.IO.File.WriteAllText(path, text);
        return path;
    }

    [Fact]
    public void Help_Lists_The_Commands()
    {
        var (code, output, _) = Run("--help");
        Assert.Equal(0, code);
        Assert.Contains("verify", output);
        Assert.Contains("info", output);
    }

    [Fact]
    public void Init_Then_Info_And_Evaluate_Round_Trip_Through_Files()
    {
        var model = Path.Combine(_dir, "m.json");
        var (code, _, err) = Run("init", "--data", "builtin:iris", "--one-hot", "species", "--hidden", "6,5", "--standardize", "--seed", "3", "--out", model);
        Assert.True(code == 0, err);
        var json = Path.Combine(_dir, "info.json");
        (code, var output, err) = Run("info", "--model", model, "--json", json);
        Assert.True(code == 0, err);
        Assert.Contains("n = 83", output); // (6·4+6) + (5·6+5) + (3·5+3)
        using (var doc = JsonDocument.Parse(System.IO.File.ReadAllText(json)))
        {
            Assert.Equal(83, doc.RootElement.GetProperty("n").GetInt32());
            Assert.True(doc.RootElement.GetProperty("inputScaling").GetBoolean());
        }
        var eval = Path.Combine(_dir, "eval.json");
        (code, _, err) = Run("evaluate", "--model", model, "--data", "builtin:iris", "--one-hot", "species", "--json", eval);
        Assert.True(code == 0, err);
        using var e = JsonDocument.Parse(System.IO.File.ReadAllText(eval));
        Assert.Equal(450, e.RootElement.GetProperty("constraints").GetInt32());
        Assert.True(e.RootElement.GetProperty("loss").GetDouble() > 0);
    }

    [Fact]
    public void Verify_Passes_And_Writes_Json()
    {
        var json = Path.Combine(_dir, "verify.json");
        var (code, output, err) = Run("verify", "--json", json);
        Assert.True(code == 0, output + err);
        Assert.Contains("PASS", output);
        Assert.DoesNotContain("FAIL", output);
        using var doc = JsonDocument.Parse(System.IO.File.ReadAllText(json));
        Assert.True(doc.RootElement.GetProperty("pass").GetBoolean());
    }

    public static TheoryData<string, string, string> BadCsv() => new()
    {
        { "ragged.csv", "a,b,y\n1,2,3\n4,5\n", "ragged.csv:3: row has 2 fields, the header has 3" },
        { "text.csv", "a,b,y\n1,2,3\n4,five,6\n", "ragged.csv:3:2: 'five' in column 'b' is not a number".Replace("ragged", "text") },
        { "nan.csv", "a,b,y\n1,NaN,3\n", "nan.csv:2:2: 'NaN' in column 'b' is not a finite number" },
        { "inf.csv", "a,b,y\n1,2,Infinity\n", "inf.csv:2:3: 'Infinity' in column 'y' is not a finite number" },
        { "inf2.csv", "a,b,y\n1,2,-inf\n", "inf2.csv:2:3: '-inf' in column 'y' is not a finite number" },
        { "norows.csv", "a,b,y\n", "norows.csv: no data rows" },
    };

    [Theory]
    [MemberData(nameof(BadCsv))]
    public void Bad_Csv_Exits_2_With_File_Line_Column(string name, string text, string message)
    {
        var model = Model(2, 1);
        var (code, output, err) = Run("evaluate", "--model", model, "--data", File(name, text), "--target", "y");
        AssertBadInput(code, output, err, message);
    }

    [Fact]
    public void Missing_Data_File_Exits_2()
    {
        var (code, output, err) = Run("evaluate", "--model", Model(2, 1), "--data", Path.Combine(_dir, "absent.csv"));
        AssertBadInput(code, output, err, "absent.csv: file not found");
    }

    [Fact]
    public void Missing_Model_File_Exits_2()
    {
        var (code, output, err) = Run("info", "--model", Path.Combine(_dir, "absent.json"));
        AssertBadInput(code, output, err, "absent.json");
    }

    [Fact]
    public void Unknown_Target_Column_Exits_2_Listing_The_Columns()
    {
        var (code, output, err) = Run("evaluate", "--model", Model(2, 1), "--data", File("ok.csv", "a,b,y\n1,2,3\n"), "--target", "z");
        AssertBadInput(code, output, err, "unknown target column 'z'; columns are: a, b, y");
    }

    [Fact]
    public void Parameter_Count_Mismatch_Exits_2()
    {
        var path = File("short.json", """{"format":"losslandscape.mlp/1","inputDim":2,"hidden":[{"width":3,"activation":"relu"}],"outputDim":1,"parameters":[1,2,3]}""");
        var (code, output, err) = Run("info", "--model", path);
        AssertBadInput(code, output, err, "'parameters' has 3 numbers");
        Assert.Contains("13", err);
    }

    [Fact]
    public void Unknown_Activation_Exits_2_Listing_The_Known_Ones()
    {
        var path = File("act.json", """{"format":"losslandscape.mlp/1","inputDim":2,"hidden":[{"width":3,"activation":"gelu"}],"outputDim":1,"parameters":[1,2,3,4,5,6,7,8,9,10,11,12,13]}""");
        var (code, output, err) = Run("info", "--model", path);
        AssertBadInput(code, output, err, "unknown activation 'gelu'");
        Assert.Contains("smoolu, relu, softplus, tanh, sigmoid, rectified-tanh, rectified-sigmoid", err);
    }

    [Theory]
    [InlineData("info", "--bogus")]
    [InlineData("evaluate")]
    [InlineData("init", "--data", "builtin:iris", "--out", "x.json", "--hidden", "3,zero")]
    [InlineData("init", "--data", "builtin:iris", "--out", "x.json", "--activation", "swish")]
    [InlineData("evaluate", "--model", "m.json", "--target", "a", "--one-hot", "b")]
    public void Bad_Command_Lines_Exit_2_With_One_Line(params string[] args)
    {
        var (code, output, err) = Run(args);
        Assert.Equal(2, code);
        Assert.Single(err.TrimEnd().Split('\n'));
        Assert.StartsWith("landscape: error:", err);
        Assert.DoesNotContain("   at ", err + output);
    }

    [Theory]
    [InlineData("evaluate")]
    [InlineData("certify")]
    [InlineData("walk")]
    [InlineData("spectrum")]
    [InlineData("trace")]
    [InlineData("approx")]
    [InlineData("slice", "--directions", "random", "--out", "x.png")]
    [InlineData("report", "--out", "report")]
    public void Commands_With_A_Model_Require_Data(string command, params string[] extra)
    {
        // A model was fit to some data: evaluating it on a default dataset would answer a question about the wrong problem.
        var args = new[] { command, "--model", Model(2, 1) }.Concat(extra).ToArray();
        var (code, output, err) = Run(args);
        AssertBadInput(code, output, err, CommonOptions.DataOptions.MissingDataMessage);
        Assert.Contains("--data is required with --model", err);
    }

    [Fact]
    public void Init_Without_Data_Announces_The_Default_On_Stderr()
    {
        var model = Path.Combine(_dir, "default.json");
        var (code, output, err) = Run("init", "--hidden", "3", "--out", model);
        Assert.True(code == 0, err);
        Assert.Equal("landscape: note: no --data given; using builtin:iris", err.Trim());
        Assert.Contains("builtin:iris", output);
        (code, _, err) = Run("init", "--data", "builtin:iris", "--hidden", "3", "--out", model);
        Assert.True(code == 0, err);
        Assert.Equal("", err);
    }

    private string Model(int inputs, int outputs)
    {
        var path = Path.Combine(_dir, $"model{inputs}x{outputs}.json");
        var data = File($"shape{inputs}x{outputs}.csv", string.Join(",", Enumerable.Range(0, inputs).Select(k => $"x{k}")) + ",y\n" + string.Join(",", Enumerable.Repeat("1", inputs + 1)) + "\n");
        var (code, _, err) = Run("init", "--data", data, "--target", "y", "--hidden", "3", "--out", path);
        Assert.True(code == 0, err);
        return path;
    }

    private static void AssertBadInput(int code, string output, string err, string message)
    {
        Assert.Equal(2, code);
        Assert.Contains(message, err);
        Assert.Single(err.TrimEnd().Split('\n'));
        Assert.DoesNotContain("   at ", err + output);
    }
}
