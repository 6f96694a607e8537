using LossLandscape.Engine;
using LossLandscape.Models;
using LossLandscape.Problem;
using static TorchSharp.torch;

namespace LossLandscape.Approximations;

/// <summary>
/// One batch's factors of one block's square-root Gauss–Newton rows gᵢ꜀ = Jᵢᵀsᵢ꜀ (sᵢ꜀ the columns of the loss's square-root
/// curvature Sᵢ, <see cref="LossFunction.CurvatureSquareRoot"/>), so that G's block is Σᵢ꜀ gᵢ꜀gᵢ꜀ᵀ.
/// </summary>
/// <param name="Block">The block.</param>
/// <param name="Patches">
/// A Kronecker block's inputs with a 1 appended for the bias, b × T × (fan-in + 1): a linear layer's input (T = 1), a
/// convolution's im2col patches at its T output positions; null otherwise.
/// </param>
/// <param name="Deltas">A Kronecker block's output gradients contracted with S, δ̃ᵢ꜀ = Σⱼ Sᵢ[j, c] δᵢⱼ: b × c × out × T; null otherwise.</param>
/// <param name="Rows">Any other block's square-root rows gᵢ꜀ restricted to the block, b × c × count; null for a Kronecker block.</param>
internal sealed record BlockBatch(ParameterBlock Block, Tensor? Patches, Tensor? Deltas, Tensor? Rows)
{
    /// <summary>
    /// The per-sample gradients of a Kronecker block, Gᵢ꜀ = Σ_t δ̃ᵢ꜀ₜ āᵢₜᵀ (b × c × out × (fan-in + 1)): the weight's and the
    /// bias's gradient rows side by side.
    /// </summary>
    public Tensor SampleGradients() => Deltas!.matmul(Patches!.unsqueeze(1));
}

/// <summary>
/// The per-layer factors of the square-root Gauss–Newton rows, batch by batch over the problem's rows: one forward pass and one
/// reverse sweep of the network per batch (<see cref="Mlp.JacobianFactors"/>, <see cref="SequentialNetwork.JacobianFactors"/>),
/// without autograd, and the loss's square-root curvature (exact or sampled) at the batch's outputs.
/// </summary>
internal static class LayerFactors
{
    /// <summary>
    /// Calls <paramref name="visit"/> with each batch's factors of every block, in the order of the rows, inside the batch's own
    /// dispose scope (accumulate in place into tensors made outside). The draws of the Monte Carlo Fisher come from one
    /// <see cref="Random"/> seeded by <see cref="KfacOptions.Seed"/>, in the order of the rows, so two passes see the same draws.
    /// </summary>
    public static void ForEachBatch(IResidualProblem problem, IReadOnlyList<ParameterBlock> blocks, KfacOptions options, RunLimits limits, string stage, Action<IReadOnlyList<BlockBatch>> visit)
    {
        var network = Network(problem);
        var loss = problem.LossFunction;
        int columns = Columns(problem, options);
        int batchSize = RowsPerBatch(problem, blocks, columns, limits);
        var rng = new Random(options.Seed);
        int d = problem.Rows;
        var rowShape = problem.Model.InputShape.ToArray();
        limits.Report($"{stage}: rows 0/{d}", 0);
        for (long start = 0; start < d; start += batchSize)
        {
            limits.ThrowIfCancellationRequested();
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            long count = Math.Min(batchSize, d - start);
            var (x, y) = problem.Data.Read(start, count);
            var p = network.Parameters.detach();
            var inputs = x.reshape([count, .. rowShape]);
            var outputs = network.Network.Forward(p, inputs);
            var s = options.Curvature == OutputCurvature.Exact
                ? loss.CurvatureSquareRoot(outputs, y, d)
                : loss.SampledCurvatureSquareRoot(outputs, y, d, options.MonteCarloSamples, rng);
            var st = s.transpose(1, 2); // b × c × ℓ
            visit(Factors(network.Network, p, inputs, st, blocks));
            limits.Checkpoint($"{stage}: rows {start + count}/{d}", (double)(start + count) / d);
        }
    }

    /// <summary>The columns c of S per row: ℓ for the exact factor, the draws for the Monte Carlo Fisher.</summary>
    public static int Columns(IResidualProblem problem, KfacOptions options) =>
        options.Curvature == OutputCurvature.Exact ? problem.Outputs : options.MonteCarloSamples;

    /// <summary>The network of a problem whose model is one of the project's layered networks, or a refusal.</summary>
    public static NetworkModel Network(IResidualProblem problem)
    {
        ArgumentNullException.ThrowIfNull(problem);
        _ = ParameterBlocks.Of(problem.Model); // refuses a model without layers, in one line
        return (NetworkModel)problem.Model;
    }

    /// <summary>
    /// Float64 values one row holds while its factors are formed: the δ of every layer for the ℓ outputs and again contracted
    /// to c columns, over the inputs and every layer's outputs; every convolution's patches; and c per-sample gradients of the
    /// largest block (EKFAC's correction, a batch norm's rows). A count of what the code holds, not a measurement.
    /// </summary>
    public static long ValuesPerRow(IResidualProblem problem, IReadOnlyList<ParameterBlock> blocks, int columns)
    {
        var network = ((NetworkModel)problem.Model).Network;
        long units = problem.Model.InputDim + network switch
        {
            Mlp mlp => mlp.Layers.Sum(layer => (long)layer.Out),
            SequentialNetwork seq => seq.Units,
            _ => 0,
        };
        long patches = blocks.Where(b => b.Kind == LayerKind.Conv2d).Sum(b => b.Positions * (b.FanIn + 1L));
        long largest = blocks.Max(b => (long)b.Count);
        return ((problem.Outputs + columns) * units) + patches + (columns * largest);
    }

    /// <summary>
    /// Rows per batch: as many as <see cref="ValuesPerRow"/> allows in a quarter of the budget (<see cref="ResidualMap.BudgetShare"/>,
    /// the rest being the factors' and the caller's), all rows when they fit; refused when one row does not.
    /// </summary>
    public static int RowsPerBatch(IResidualProblem problem, IReadOnlyList<ParameterBlock> blocks, int columns, RunLimits limits)
    {
        long perRow = checked(sizeof(double) * ValuesPerRow(problem, blocks, columns));
        limits.Require($"one row's per-layer factors ({perRow / sizeof(double)} numbers, a {ResidualMap.BudgetShare}th of the budget)", checked(perRow * ResidualMap.BudgetShare),
            "use a smaller network", BudgetRemedy.Widths);
        return (int)Math.Clamp(limits.MemoryBudgetBytes / ResidualMap.BudgetShare / perRow, 1, Math.Max(1, problem.Rows));
    }

    /// <summary>One batch's factors of every block, from the network's per-layer inputs and δ and Sᵀ (b × c × ℓ).</summary>
    private static BlockBatch[] Factors(FeedforwardNetwork network, Tensor p, Tensor inputs, Tensor st, IReadOnlyList<ParameterBlock> blocks)
    {
        long b = inputs.shape[0];
        var result = new BlockBatch[blocks.Count];
        switch (network)
        {
            case Mlp mlp:
            {
                var factors = mlp.JacobianFactors(p, inputs.reshape(b, -1));
                for (int k = 0; k < blocks.Count; k++)
                {
                    var (a, delta) = factors[blocks[k].Index];
                    result[k] = Kronecker(blocks[k], Augment(a.unsqueeze(1)), delta.unsqueeze(-1), st);
                }
                return result;
            }
            case SequentialNetwork seq:
            {
                var factors = seq.JacobianFactors(p, inputs);
                for (int k = 0; k < blocks.Count; k++)
                {
                    var (slice, x, delta) = factors[k];
                    var block = blocks[k];
                    result[k] = slice.Layer switch
                    {
                        LinearLayer => Kronecker(block, Augment(x.unsqueeze(1)), delta.unsqueeze(-1), st),
                        Conv2dLayer conv => Kronecker(block, Augment(SequentialNetwork.Unfold(x, conv).transpose(1, 2)), delta.reshape(b, delta.shape[1], block.Out, block.Positions), st),
                        _ => new BlockBatch(block, null, null, st.matmul(seq.BatchNormGradients(slice, x, delta))),
                    };
                }
                return result;
            }
            default:
                throw new NotSupportedException($"no per-layer factors for a {network.GetType().Name}");
        }
    }

    /// <summary>A Kronecker block's batch: patches b × T × (f + 1); δ (b × ℓ × out × T) contracted with Sᵀ to b × c × out × T.</summary>
    private static BlockBatch Kronecker(ParameterBlock block, Tensor patches, Tensor delta, Tensor st)
    {
        long b = delta.shape[0], l = delta.shape[1];
        var contracted = st.matmul(delta.reshape(b, l, block.Out * block.Positions)).view(b, st.shape[1], block.Out, block.Positions);
        return new BlockBatch(block, patches, contracted, null);
    }

    /// <summary>[a, 1]: the inputs b × T × f with the bias's constant input appended, b × T × (f + 1).</summary>
    private static Tensor Augment(Tensor a) => cat([a, ones(a.shape[0], a.shape[1], 1, dtype: a.dtype, device: a.device)], 2);
}
