using LossLandscape.Engine;
using LossLandscape.Geometry;
using LossLandscape.Models;
using LossLandscape.Models.Activations;
using LossLandscape.Training;

namespace LossLandscape.Tests;

/// <summary>
/// Gauss–Newton training without J (issue 11, §1): when the SVD of J does not fit the memory budget, the steps
/// Jᵀ(JJᵀ + μI)⁻¹H come from the per-layer Gram matrix and one vector–Jacobian product, take the same path as the SVD
/// route, and the optimizer says which route it used.
/// </summary>
public sealed class GaussNewtonRouteTests
{
    [Fact]
    public void Gauss_Newton_Without_J_Takes_The_Steps_Of_The_Svd_Route_And_Says_So()
    {
        var data = Cases.Data(12, 3, 1, seed: 5);
        var mlp = new Mlp(3, [new HiddenLayer(50, new Tanh())], 1);
        var start = mlp.InitialParameters(2);

        (double[] Point, string Description, JacobianRoute Route) Train(long budget)
        {
            using var model = new NetworkModel(mlp, start);
            using var map = new ResidualMap(model, data);
            using var optimizer = new GaussNewton();
            var run = Trainer.Run(map, optimizer, new TrainingOptions(3), new RunLimits(budget));
            return (run.BestParameters, optimizer.Describe(), optimizer.Route);
        }

        long gramBytes, svdBytes;
        using (var model = new NetworkModel(mlp, start))
        using (var map = new ResidualMap(model, data))
        {
            gramBytes = JacobianFactorization.RequiredBytes(map, JacobianRoute.Gram);
            svdBytes = JacobianFactorization.RequiredBytes(map, JacobianRoute.Svd);
        }
        Assert.True(gramBytes < svdBytes, $"the case must let a budget take the Gram route: Gram {gramBytes} B, SVD {svdBytes} B");

        var svd = Train(MemoryBudget.DefaultBytes);
        var gram = Train(gramBytes); // the SVD of J does not fit: J is never formed
        Assert.Equal(JacobianRoute.Svd, svd.Route);
        Assert.Equal(JacobianRoute.Gram, gram.Route);
        Assert.Contains("J factored by its SVD", svd.Description);
        Assert.Contains("J never formed", gram.Description);
        using (var model = new NetworkModel(mlp, start))
        using (var map = new ResidualMap(model, data))
        {
            // The projection onto M (construct's polish, walk, certify --perturb) takes the same route under the same budget, and says so.
            Assert.Equal(JacobianRoute.Gram, GaussNewtonProjection.Project(map, new GaussNewtonOptions(1e-12, 2), new RunLimits(gramBytes)).Route);
            Assert.Equal(JacobianRoute.Svd, GaussNewtonProjection.Project(map, new GaussNewtonOptions(1e-12, 2)).Route);
        }
        double scale = Math.Max(1, svd.Point.Max(Math.Abs));
        double worst = svd.Point.Zip(gram.Point).Max(p => Math.Abs(p.First - p.Second));
        Assert.True(worst <= Tolerances.GramRouteSteps * scale, $"max |p_svd − p_gram| = {worst:G3} after 3 steps");
    }
}
