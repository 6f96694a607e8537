namespace LossLandscape.Tests;

/// <summary>
/// Issue 13, one memory budget for every command that allocates by it: <c>--budget-gb G</c> is parsed and refused the same
/// way everywhere, reaches the library, and every memory refusal names it as the way to raise the budget.
/// </summary>
public sealed class BudgetOptionTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("landscape-budget-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string P(string name) => Path.Combine(_dir, name);

    /// <summary>An iris MLP of width 64 (n = 515, ℓd = 450): its certificate, walk, trace and dense spectrum need megabytes.</summary>
    private string Iris64()
    {
        var r = CliTests.Run("init", "--data", "builtin:iris", "--one-hot", "species", "--hidden", "64", "--out", P("iris64.json"));
        Assert.True(r.Code == 0, r.Err);
        return P("iris64.json");
    }

    /// <summary>The commands that take --budget-gb, each with its required options and a model that need not exist.</summary>
    public static TheoryData<string[]> Commands() => new()
    {
        new[] { "evaluate", "--model", "absent.json", "--data", "builtin:iris" },
        new[] { "certify", "--model", "absent.json", "--data", "builtin:iris" },
        new[] { "spectrum", "--model", "absent.json", "--data", "builtin:iris" },
        new[] { "trace", "--model", "absent.json", "--data", "builtin:iris" },
        new[] { "approx", "--model", "absent.json", "--data", "builtin:iris" },
        new[] { "walk", "--model", "absent.json", "--data", "builtin:iris" },
        new[] { "slice", "--model", "absent.json", "--data", "builtin:iris", "--out", "s.png" },
        new[] { "report", "--model", "absent.json", "--data", "builtin:iris", "--out", "page" },
        new[] { "connect", "--model", "absent.json", "--to", "absent-b.json", "--data", "builtin:iris" },
        new[] { "init", "--data", "builtin:iris", "--out", "x.json" },
        new[] { "train", "--data", "builtin:iris", "--out", "x.json" },
        new[] { "construct", "--data", "builtin:iris", "--out", "x.json" },
    };

    [Theory]
    [MemberData(nameof(Commands))]
    public void Every_Command_Refuses_A_Budget_That_Is_Not_Positive_Before_Reading_Anything(string[] args)
    {
        var paths = args.Select(a => a.EndsWith(".json", StringComparison.Ordinal) || a.EndsWith(".png", StringComparison.Ordinal) || a == "page" ? P(a) : a).ToArray();
        foreach (var value in new[] { "0", "-1", "NaN", "1e-10", "Infinity" })
        {
            var r = CliTests.Run([.. paths, "--budget-gb", value]);
            CliGuardTests.AssertOneLineError(r, $"--budget-gb: {(value == "1e-10" ? "1E-10" : value)} is not a positive number of gigabytes");
        }
        var text = CliTests.Run([.. paths, "--budget-gb", "lots"]);
        CliGuardTests.AssertOneLineError(text, "Cannot parse argument 'lots' for option '--budget-gb'");
        Assert.False(File.Exists(P("x.json")));
    }

    [Theory]
    [InlineData("0.001", "certify")]
    [InlineData("0.0001", "walk")]
    [InlineData("0.0001", "trace", "--method", "exact")]
    [InlineData("0.0001", "spectrum", "--method", "dense")]
    public void A_Small_Budget_Reaches_The_Library_And_The_Refusal_Names_Budget_Gb(string budget, params string[] command)
    {
        var model = Iris64();
        var r = CliTests.Run([.. command, "--model", model, "--data", "builtin:iris", "--one-hot", "species", "--budget-gb", budget]);
        CliGuardTests.AssertOneLineError(r, $"over the memory budget of {budget} GB");
        Assert.Contains("raise --budget-gb", r.Err);
    }

    [Fact]
    public void A_Width_Refused_At_The_Default_Budget_Is_Accepted_Under_A_Larger_One()
    {
        // 100 000 rows × 1000 units: the activations ×4 need 3.2 GB (refused at 2 GiB) while the network has 4001 parameters,
        // so init, which allocates only the parameters, runs at once under --budget-gb 4.
        string[] args = ["init", "--data", "synthetic:100000,2", "--hidden", "1000", "--out", P("wide.json")];
        var refused = CliTests.Run(args);
        CliGuardTests.AssertOneLineError(refused, "--hidden");
        Assert.Contains("over the memory budget of 2.147 GB", refused.Err);
        Assert.Contains("raise --budget-gb", refused.Err);
        Assert.False(File.Exists(P("wide.json")));

        var accepted = CliTests.Run([.. args, "--budget-gb", "4"]);
        Assert.True(accepted.Code == 0, accepted.Err);
        Assert.Contains("n = 4001", accepted.Out);
        Assert.True(File.Exists(P("wide.json")));
    }

    [Fact]
    public void Synthetic_Data_Is_Checked_Against_The_Given_Budget()
    {
        // 1000 rows × 3 columns ×3 copies = 72 kB: within the default, over a budget of 1e−5 GB (10 kB).
        var r = CliTests.Run("init", "--data", "synthetic:1000,2", "--out", P("s.json"), "--budget-gb", "1e-5");
        CliGuardTests.AssertOneLineError(r, "synthetic data of D = 1000 rows");
        Assert.Contains("raise --budget-gb", r.Err);
    }
}
