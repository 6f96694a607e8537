using System.Text.Json.Nodes;

namespace LossLandscape.Tests;

/// <summary>
/// Issue 13 through the <c>landscape</c> command, in-process: sizes refused before allocating (exit 2, one line with the
/// bytes, the budget and the option), non-finite points refused naming what overflowed, options validated before any
/// work, and an error printer that cannot throw.
/// </summary>
public sealed class CliGuardTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("landscape-guards-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string P(string name) => Path.Combine(_dir, name);

    /// <summary>Exit 2 with exactly one line on stderr, "landscape: error: …", no stack trace, nothing of libtorch's.</summary>
    internal static void AssertOneLineError((int Code, string Out, string Err) r, string? contains = null)
    {
        Assert.True(r.Code == 2, $"exit {r.Code}: {r.Err}");
        var lines = r.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1, $"stderr has {lines.Length} lines: {r.Err}");
        Assert.StartsWith("landscape: error: ", lines[0]);
        Assert.DoesNotContain("   at ", r.Err);
        Assert.DoesNotContain("frame #", r.Err);
        Assert.DoesNotContain("(Parameter '", r.Err);
        if (contains is not null)
        {
            Assert.Contains(contains, r.Err);
        }
    }

    private string IrisModel(string name = "iris.json")
    {
        var r = CliTests.Run("init", "--data", "builtin:iris", "--one-hot", "species", "--hidden", "4", "--out", P(name));
        Assert.Equal(0, r.Code);
        return P(name);
    }

    private string Edited(string model, string name, Action<JsonObject> edit)
    {
        var json = JsonNode.Parse(File.ReadAllText(model))!.AsObject();
        edit(json);
        File.WriteAllText(P(name), json.ToJsonString());
        return P(name);
    }

    [Theory]
    [InlineData("--hidden", "init", "--data", "builtin:digits", "--one-hot", "digit", "--hidden", "10000000", "--out", "x.json")]
    [InlineData("--hidden", "train", "--data", "builtin:digits", "--one-hot", "digit", "--hidden", "10000000", "--out", "x.json")]
    [InlineData("--hidden", "construct", "--data", "builtin:digits", "--one-hot", "digit", "--hidden", "10000000", "--out", "x.json")]
    [InlineData("synthetic data (--data)", "init", "--data", "synthetic:1000000000,2", "--out", "x.json")]
    [InlineData("--grid", "slice", "--model", "absent.json", "--data", "builtin:iris", "--grid", "100000", "--out", "s.png")]
    public void Sizes_Over_The_Memory_Budget_Are_Refused_With_The_Bytes_The_Budget_And_The_Option(string option, params string[] args)
    {
        var r = CliTests.Run(args.Select(a => a.EndsWith(".json", StringComparison.Ordinal) || a.EndsWith(".png", StringComparison.Ordinal) ? P(a) : a).ToArray());
        AssertOneLineError(r, option);
        Assert.Contains("GB, over the memory budget of 2.147 GB", r.Err);
        Assert.False(File.Exists(P("x.json")));
    }

    [Fact]
    public void A_Parameter_Of_1e308_Is_Refused_By_Every_Command_Naming_The_Layer()
    {
        var big = Edited(IrisModel(), "big.json", m => m["parameters"]![0] = 1e308);
        foreach (var command in new[] { "evaluate", "trace", "spectrum", "certify", "walk", "approx" })
        {
            var args = new List<string> { command, "--model", big, "--data", "builtin:iris", "--one-hot", "species" };
            if (command == "walk")
            {
                args.AddRange(["--out", P("walk.json")]);
            }
            var r = CliTests.Run([.. args]);
            AssertOneLineError(r, "layer 1 of 2 overflows");
            Assert.DoesNotContain("NaN", r.Out);
        }
        // The second endpoint of connect is checked like the first.
        AssertOneLineError(CliTests.Run("connect", "--model", P("iris.json"), "--to", big, "--data", "builtin:iris", "--one-hot", "species", "--method", "linear"),
            "layer 1 of 2 overflows");
    }

    [Fact]
    public void An_Input_Scale_Of_1e_308_And_An_Exponent_Of_1e6_Are_Refused_Naming_What_Overflowed()
    {
        var model = IrisModel();
        var tiny = Edited(model, "tiny.json", m => m["input"] = new JsonObject
        {
            ["shift"] = new JsonArray(0.0, 0.0, 0.0, 0.0),
            ["scale"] = new JsonArray(1e-308, 1.0, 1.0, 1.0),
        });
        AssertOneLineError(CliTests.Run("evaluate", "--model", tiny, "--data", "builtin:iris", "--one-hot", "species"), "scaled inputs overflow");
        var r = CliTests.Run("evaluate", "--model", model, "--data", "builtin:iris", "--one-hot", "species", "--exponent", "1e6", "--json", P("e.json"));
        AssertOneLineError(r, "a = 1E+06");
        Assert.False(File.Exists(P("e.json")));
    }

    [Fact]
    public void A_Dag_Output_Vertex_With_An_Activation_Is_Refused()
    {
        string dag = """
            {"format":"losslandscape.dag/1","inputDim":1,"parameterCount":4,
             "vertices":[{"kind":"hidden","bias":1,"activation":"tanh"},{"kind":"output","bias":3,"activation":"tanh"}],
             "edges":[{"from":0,"to":1,"parameter":0},{"from":1,"to":2,"parameter":2}],
             "parameters":[0.5,0.1,-0.3,0.2]}
            """;
        File.WriteAllText(P("dag.json"), dag);
        AssertOneLineError(CliTests.Run("info", "--model", P("dag.json")), "an output vertex is linear");
        File.WriteAllText(P("dag-ok.json"), dag.Replace(",\"activation\":\"tanh\"}],", "}],", StringComparison.Ordinal));
        Assert.Equal(0, CliTests.Run("info", "--model", P("dag-ok.json")).Code);
    }

    [Theory]
    [InlineData("--tolerance", "certify", "--tolerance", "-1")]
    [InlineData("--tolerance", "certify", "--tolerance", "NaN")]
    [InlineData("--perturb", "certify", "--perturb", "-1")]
    [InlineData("--tolerance", "walk", "--tolerance", "-1", "--out", "w.json")]
    [InlineData("--walk-steps", "report", "--walk-steps", "-1", "--out", "rep")]
    [InlineData("--grid", "report", "--grid", "100000", "--out", "rep")]
    public void Bad_Option_Values_Are_Refused_Before_The_Model_Is_Read(string option, params string[] args)
    {
        // The model does not exist: a refusal that names the option shows the option was checked first.
        var r = CliTests.Run([.. args.Select(a => a is "w.json" or "rep" ? P(a) : a), "--model", P("absent.json"), "--data", "builtin:iris"]);
        AssertOneLineError(r, option);
    }

    [Fact]
    public void A_Report_Directory_Under_A_File_Is_Refused_Before_The_Checks_Run()
    {
        File.WriteAllText(P("afile"), "x");
        AssertOneLineError(CliTests.Run("verify", "--report", Path.Combine(P("afile"), "sub")), "--report");
        AssertOneLineError(CliTests.Run("verify", "--report", P("afile")), "is a file");
    }

    [Fact]
    public void A_History_With_String_Losses_Or_A_Directory_Is_Refused_With_One_Line()
    {
        var model = IrisModel();
        File.WriteAllText(P("h.json"), """{"lossHistory":["a","b"]}""");
        AssertOneLineError(CliTests.Run("report", "--model", model, "--data", "builtin:iris", "--one-hot", "species", "--history", P("h.json"), "--out", P("rep")), "entry 0 of 'lossHistory'");
        Directory.CreateDirectory(P("adir"));
        AssertOneLineError(CliTests.Run("report", "--model", model, "--data", "builtin:iris", "--one-hot", "species", "--history", P("adir"), "--out", P("rep")), "--history");
        AssertOneLineError(CliTests.Run("info", "--model", P("adir")));
        // lossSteps (train --loss-every) must give one increasing step per loss.
        File.WriteAllText(P("s.json"), """{"lossHistory":[3,2,1],"lossSteps":[0,4]}""");
        AssertOneLineError(CliTests.Run("report", "--model", model, "--data", "builtin:iris", "--one-hot", "species", "--history", P("s.json"), "--out", P("rep")), "'lossSteps' is not an array of 3 steps");
        File.WriteAllText(P("s.json"), """{"lossHistory":[3,2,1],"lossSteps":[0,4,4]}""");
        AssertOneLineError(CliTests.Run("report", "--model", model, "--data", "builtin:iris", "--one-hot", "species", "--history", P("s.json"), "--out", P("rep")), "does not increase at entry 2");
    }

    [Fact]
    public void An_Empty_Or_Broken_Model_File_Is_Refused_In_Our_Words_Not_The_Readers()
    {
        File.WriteAllText(P("empty.json"), "");
        var r = CliTests.Run("info", "--model", P("empty.json"));
        AssertOneLineError(r, "the file is empty");
        File.WriteAllText(P("broken.json"), "{\"format\": ");
        r = CliTests.Run("info", "--model", P("broken.json"));
        AssertOneLineError(r, "not valid JSON");
        foreach (var words in new[] { "isFinalBlock", "LineNumber:", "BytePositionInLine" })
        {
            Assert.DoesNotContain(words, r.Err);
        }
    }

    [Fact]
    public void A_Diverged_Training_Prints_No_Non_Finite_Number_And_Writes_The_Best_Point()
    {
        // Gradient descent with η = 10¹⁰ overflows within a few steps: the status says diverged, the table says so in words.
        var r = CliTests.Run("train", "--data", "builtin:iris", "--one-hot", "species", "--hidden", "4", "--optimizer", "gd", "--lr", "1e10",
            "--steps", "20", "--out", P("dv.json"), "--json", P("dv-report.json"));
        Assert.Equal(0, r.Code);
        Assert.Contains("diverged", r.Out);
        foreach (var text in new[] { r.Out, File.ReadAllText(P("dv-report.json")) })
        {
            Assert.DoesNotContain("NaN", text);
            Assert.DoesNotContain("Infinity", text);
        }
        Assert.Equal(0, CliTests.Run("evaluate", "--model", P("dv.json"), "--data", "builtin:iris", "--one-hot", "species").Code);
    }

    [Fact]
    public void An_Unknown_Command_Is_Named_And_The_Commands_Listed()
    {
        var r = CliTests.Run("frobnicate");
        AssertOneLineError(r, "unknown command 'frobnicate'");
        Assert.Contains("verify, info, init, evaluate", r.Err);
    }

    [Fact]
    public void A_Huge_Bad_Cell_Is_Quoted_At_Most_80_Characters()
    {
        string cell = new('z', 100_000);
        File.WriteAllText(P("huge.csv"), $"a,b\n1,2\n{cell},3\n");
        var r = CliTests.Run("init", "--data", P("huge.csv"), "--out", P("m.json"));
        AssertOneLineError(r, "(100000 characters)");
        Assert.True(r.Err.Length < MaxErrorLineForOneCell, $"{r.Err.Length} characters");
    }

    /// <summary>The path, the position, the 80 quoted characters and the words: a few hundred characters, never the cell.</summary>
    private const int MaxErrorLineForOneCell = 600;

    [Fact]
    public void The_Error_Printer_Survives_A_Closed_Stderr()
    {
        var r = LossLandscape.Cli.LandscapeApp.Run(["info", "--model", P("nope.json")], new StringWriter(), new ClosedWriter());
        Assert.Equal(2, r);
        Assert.Equal(2, LossLandscape.Cli.LandscapeApp.Run(["frobnicate"], new StringWriter(), new ClosedWriter()));
    }

    /// <summary>A stderr whose every write fails, like a closed file descriptor (<c>2&gt;&amp;-</c>).</summary>
    private sealed class ClosedWriter : TextWriter
    {
        public override System.Text.Encoding Encoding => System.Text.Encoding.UTF8;

        public override void Write(char value) => throw new IOException("Bad file descriptor");

        public override void Write(string? value) => throw new IOException("Bad file descriptor");

        public override void WriteLine(string? value) => throw new IOException("Bad file descriptor");

        public override void Flush() => throw new IOException("Bad file descriptor");
    }

    [Fact]
    public void Libtorch_Messages_Keep_Their_First_Sentence_Only()
    {
        var e = new System.Runtime.InteropServices.ExternalException(
            "linalg.svd: The algorithm failed to converge because the input matrix contained non-finite values. Exception raised from _linalg_check_errors at /pytorch/aten/src/ATen/native/BatchLinearAlgebra.cpp:1610 (most recent call first):\nframe #0: c10::Error::Error(...)");
        var err = new StringWriter();
        Assert.Equal(2, LossLandscape.Cli.LandscapeApp.Report(e, err, debug: false));
        AssertOneLineError((2, "", err.ToString()), "non-finite values.");
        Assert.DoesNotContain("Exception raised from", err.ToString());
    }
}
