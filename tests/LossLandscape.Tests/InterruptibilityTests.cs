using LossLandscape.Data;
using LossLandscape.Engine;
using LossLandscape.Geometry;
using LossLandscape.Models;
using LossLandscape.Models.Activations;
using LossLandscape.Paths;
using static TorchSharp.torch;

namespace LossLandscape.Tests;

/// <summary>
/// Issue 13, the long computations without a loop of their own stop at a check once the token of their
/// <see cref="RunLimits"/> is cancelled: the Gram matrix between its blocks, the Jacobian's factorization before its LAPACK
/// call; and a map made with a token stops every evaluation at its next batch of rows (<see cref="ResidualMap.Cancellation"/>).
/// A walk whose token was cancelled before it began (a signal while loading) still factors J and returns its start, cancelled.
/// </summary>
public sealed class InterruptibilityTests
{
    private static (NetworkModel Model, ResidualMap Map) Network(Dataset data, int width, int seed)
    {
        var mlp = new Mlp(data.InputDim, [new HiddenLayer(width, ActivationRegistry.Get("smoolu"))], data.OutputDim);
        var model = new NetworkModel(mlp, mlp.InitialParameters(seed));
        return (model, new ResidualMap(model, data));
    }

    [Fact]
    public void The_Gram_Matrix_And_The_Factorization_Stop_When_Cancelled()
    {
        TorchRuntime.EnsureInitialized();
        using var scope = NewDisposeScope();
        var data = SyntheticData.Gaussian(20, 3, 2, seed: 4);
        var (model, map) = Network(data, 30, 1);
        using (model)
        using (map)
        {
            using var source = new CancellationTokenSource();
            source.Cancel();
            var cancelled = new RunLimits(Cancellation: source.Token);
            // GramMatrix.Factored reads the network's factors, not the map's batches: only its own check can stop it.
            Assert.ThrowsAny<OperationCanceledException>(() => GramMatrix.Factored((Mlp)model.Network, model.Parameters, data.InputsTensor(), cancelled));
            // The limits' token on a map without one: between the blocks of JJᵀ and before each route's LAPACK call.
            Assert.ThrowsAny<OperationCanceledException>(() => GramMatrix.Compute(map, cancelled));
            foreach (var route in new[] { JacobianRoute.Gram, JacobianRoute.Svd, JacobianRoute.Normal })
            {
                Assert.ThrowsAny<OperationCanceledException>(() => JacobianFactorization.At(map, route, cancelled));
            }
            // The map's own token, given at construction: every evaluation stops at its next batch of rows.
            using (var stopped = new ResidualMap(model, data, cancellation: source.Token))
            {
                Assert.ThrowsAny<OperationCanceledException>(() => GramMatrix.Compute(stopped));
                foreach (var route in new[] { JacobianRoute.Gram, JacobianRoute.Svd, JacobianRoute.Normal })
                {
                    Assert.ThrowsAny<OperationCanceledException>(() => JacobianFactorization.At(stopped, route));
                }
            }
            using var gram = GramMatrix.Compute(map); // the map without a token computes
            Assert.Equal(data.Count * data.OutputDim, gram.shape[0]);
        }
    }

    [Fact]
    public void A_Walk_Cancelled_Before_It_Began_Returns_Its_Start_Cancelled()
    {
        TorchRuntime.EnsureInitialized();
        using var scope = NewDisposeScope();
        var data = SyntheticData.Gaussian(6, 2, 1, seed: 2);
        var (model, map) = Network(data, 12, 3);
        using (model)
        using (map)
        {
            using var source = new CancellationTokenSource();
            source.Cancel();
            var walk = ManifoldWalk.Run(map, new WalkOptions(5, 0.05, 0, 1e-3), new RunLimits(Cancellation: source.Token));
            Assert.Equal(SolverStatus.Cancelled, walk.Status);
            Assert.Single(walk.Steps);
            Assert.True(double.IsFinite(map.Loss())); // the map has no token of its own: it evaluates after the walk
        }
    }
}
