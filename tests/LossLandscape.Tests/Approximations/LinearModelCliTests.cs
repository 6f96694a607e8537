using System.Text.Json;

namespace LossLandscape.Tests.Approximations;

/// <summary>
/// Issue 23 §1: <c>init --hidden none</c> writes the linear model f(x) = Wx + b (an MLP without hidden layers), and the commands
/// take it as any other model.
/// </summary>
public sealed class LinearModelCliTests : IDisposable
{
    private static readonly string[] Data = ["--data", "builtin:iris", "--one-hot", "species"];

    private readonly string _dir = Directory.CreateTempSubdirectory("landscape-linear-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Init_Hidden_None_Writes_The_Linear_Model_And_Every_Command_Takes_It()
    {
        string model = Path.Combine(_dir, "linear.json");
        var (code, output, err) = CliTests.Run(["init", .. Data, "--hidden", "none", "--out", model]);
        Assert.True(code == 0, output + err);
        Assert.Contains("widths none", output);
        using (var doc = JsonDocument.Parse(File.ReadAllText(model)))
        {
            Assert.Equal(0, doc.RootElement.GetProperty("hidden").GetArrayLength());
            Assert.Equal(4 * 3 + 3, doc.RootElement.GetProperty("parameters").GetArrayLength()); // W (3 × 4) and b (3)
        }
        foreach (var command in new[]
        {
            new[] { "info", "--model", model },
            ["evaluate", "--model", model, .. Data],
            ["spectrum", "--model", model, .. Data, "--method", "dense", "--k", "3"],
            ["trace", "--model", model, .. Data, "--method", "exact"],
            ["certify", "--model", model, .. Data],
            ["train", .. Data, "--hidden", "none", "--steps", "3", "--out", Path.Combine(_dir, "trained.json")],
        })
        {
            var (c, o, e) = CliTests.Run(command);
            Assert.True(c == 0, $"{command[0]}: {o}{e}");
        }
        var (bad, _, badErr) = CliTests.Run(["init", .. Data, "--hidden", "none,4", "--out", Path.Combine(_dir, "bad.json")]);
        Assert.Equal(2, bad);
        Assert.Contains("--hidden", badErr);
    }
}
