using LossLandscape.Models;
using LossLandscape.Operators;
using static TorchSharp.torch;

namespace LossLandscape.Tests;

/// <summary>
/// Hessian products through a kept graph of ∇L (<see cref="ResidualMap.ReusesGradientGraph"/>) against products that
/// rebuild it, on the shared case table: equal at the point, and never stale after the point moves, by
/// <see cref="ResidualMap.SetPoint"/> or by a write into the leaves that the map does not see.
/// </summary>
public class GradientGraphReuseTests
{
    public static TheoryData<string> Names() => Cases.Names();

    [Theory]
    [MemberData(nameof(Names))]
    public void Kept_Graph_Products_Equal_Rebuilt_Ones_And_Follow_Every_Move_Of_The_Point(string name)
    {
        var c = Cases.Get(name);
        using var scope = NewDisposeScope();
        foreach (var loss in new[] { LossFunction.Squared(), LossFunction.Mse })
        {
            using var model = new NetworkModel(c.Network, c.Parameters);
            using var kept = new ResidualMap(model, c.Data, loss);
            Assert.True(kept.ReusesGradientGraph);
            var v = SeededBlock(model.ParameterCount, 3, seed: 11);

            // At the starting point, twice (the second through the kept graph).
            var first = kept.HessianTimes(v);
            AssertSame(Rebuilt(model, c, loss, v), first);
            AssertSame(first, kept.HessianTimes(v));

            // The leaves written behind the map's back (an optimizer's in-place step): the kept graph is stale.
            using (no_grad())
            {
                model.Leaves[0].add_(SeededBlock(model.ParameterCount, 1, seed: 12).reshape(model.Leaves[0].shape).mul(tensor(0.05, float64)));
            }
            AssertSame(Rebuilt(model, c, loss, v), kept.HessianTimes(v));

            // The same values written again in place: autograd's version of the leaf moved, the values did not.
            using (no_grad())
            {
                model.Leaves[0].copy_(model.Leaves[0].clone());
            }
            AssertSame(Rebuilt(model, c, loss, v), kept.HessianTimes(v));

            // A point set through the map.
            kept.SetPoint(tensor(c.Parameters).add(SeededBlock(model.ParameterCount, 1, seed: 13).squeeze(1).mul(tensor(0.1, float64))));
            AssertSame(Rebuilt(model, c, loss, v), kept.HessianTimes(v));
        }
    }

    [Fact]
    public void A_Map_Of_Several_Batches_Or_With_Reuse_Off_Keeps_No_Graph()
    {
        var c = Cases.Get("mlp 3-5-3 softplus");
        using var scope = NewDisposeScope();
        using var model = new NetworkModel(c.Network, c.Parameters);
        using var batched = new ResidualMap(model, c.Data, batchSize: c.Data.Count - 1);
        Assert.False(batched.ReusesGradientGraph);
        using var off = new ResidualMap(model, c.Data) { GradientGraphReuse = false };
        Assert.False(off.ReusesGradientGraph);
        using var one = new ResidualMap(model, c.Data);
        var v = SeededBlock(model.ParameterCount, 2, seed: 5);
        AssertSame(one.HessianTimes(v), batched.HessianTimes(v));
        AssertSame(one.HessianTimes(v), off.HessianTimes(v));
        // The Hessian operator on the kept graph equals its dense reference.
        var dense = new HessianOperator(one).ToDense();
        AssertSame(dense.matmul(v), one.HessianTimes(v));
    }

    /// <summary>∇²L V at the model's current point by a map that rebuilds the graph.</summary>
    private static Tensor Rebuilt(NetworkModel model, NetworkCase c, LossFunction loss, Tensor v)
    {
        using var map = new ResidualMap(model, c.Data, loss) { GradientGraphReuse = false };
        return map.HessianTimes(v);
    }

    private static Tensor SeededBlock(long n, long k, int seed)
    {
        var generator = new Generator((ulong)seed);
        return randn(n, k, dtype: float64, generator: generator);
    }

    private static void AssertSame(Tensor expected, Tensor actual)
    {
        double scale = Math.Max(1.0, expected.abs().max().item<double>());
        double difference = (expected - actual).abs().max().item<double>();
        Assert.True(difference <= Tolerances.ExactAgreement * scale, $"|Δ| = {difference:G3}, scale {scale:G3}");
    }
}
