namespace LossLandscape.Tests;

/// <summary>
/// Issue 19 §6: what was silently coerced is a one-line refusal (exit 2) naming the problem: k above n, a key repeated in
/// a model or cluster file, a size beyond a 32-bit int. (The CSV coercions are in <c>DataTests</c>.)
/// </summary>
public sealed class CoercionRefusalTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("landscape-coercion-").FullName;
    private readonly string _model;

    public CoercionRefusalTests()
    {
        _model = Path.Combine(_dir, "m.json");
        var (code, _, err) = CliTests.Run("init", "--data", "builtin:iris", "--one-hot", "species", "--hidden", "2", "--out", _model);
        Assert.True(code == 0, err); // n = (2·4 + 2) + (3·2 + 3) = 19
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Write(string name, string text)
    {
        string path = Path.Combine(_dir, name);
        File.WriteAllText(path, text);
        return path;
    }

    [Theory]
    [InlineData("lanczos")]
    [InlineData("dense")]
    public void Spectrum_K_Above_N_Is_Refused_Naming_N(string method)
    {
        CliGuardTests.AssertOneLineError(CliTests.Run("spectrum", "--model", _model, "--data", "builtin:iris", "--one-hot", "species", "--method", method, "--k", "1000"), "k = 1000");
        var (_, _, err) = CliTests.Run("spectrum", "--model", _model, "--data", "builtin:iris", "--one-hot", "species", "--method", method, "--k", "20");
        Assert.Contains("n = 19", err);
        // k = n is the whole spectrum: answered.
        var (code, output, error) = CliTests.Run("spectrum", "--model", _model, "--data", "builtin:iris", "--one-hot", "species", "--method", "dense", "--k", "19");
        Assert.True(code == 0, error);
        Assert.Contains("19", output);
    }

    [Fact]
    public void A_Key_Repeated_In_A_Model_File_Is_Refused_Naming_It()
    {
        string text = File.ReadAllText(_model);
        Assert.Contains("\"activation\": \"smoolu\"", text);
        string twice = Write("twice.json", text.Replace("\"activation\": \"smoolu\"", "\"activation\": \"smoolu\", \"activation\": \"tanh\""));
        CliGuardTests.AssertOneLineError(CliTests.Run("info", "--model", twice), "'activation' appears twice");
        CliGuardTests.AssertOneLineError(CliTests.Run("evaluate", "--model", twice, "--data", "builtin:iris", "--one-hot", "species"), "'activation' appears twice");
    }

    [Fact]
    public void A_Key_Repeated_In_A_Cluster_File_Is_Refused_Naming_It()
    {
        string file = Path.Combine(_dir, "cluster.json");
        var (code, _, err) = CliTests.Run("cluster", "init", "--workers", "2", "--base-port", "31200", "--out", file);
        Assert.True(code == 0, err);
        string text = File.ReadAllText(file);
        Assert.Contains("\"shards\": 2,", text);
        File.WriteAllText(file, text.Replace("\"shards\": 2,", "\"shards\": 2, \"shards\": 1,"));
        CliGuardTests.AssertOneLineError(CliTests.Run("evaluate", "--model", _model, "--data", "builtin:iris", "--one-hot", "species", "--cluster", file), "'shards' appears twice");
    }

    [Theory]
    [InlineData("2147483648")]
    [InlineData("1e12")]
    public void A_Size_Beyond_A_32_Bit_Int_Names_The_Limit(string size)
    {
        string text = File.ReadAllText(_model);
        string big = Write("big.json", text.Replace("\"inputDim\": 4", $"\"inputDim\": {size}"));
        CliGuardTests.AssertOneLineError(CliTests.Run("info", "--model", big), "2147483647");
        string fraction = Write("fraction.json", text.Replace("\"inputDim\": 4", "\"inputDim\": 4.5"));
        CliGuardTests.AssertOneLineError(CliTests.Run("info", "--model", fraction), "inputDim must be an integer");
    }
}
