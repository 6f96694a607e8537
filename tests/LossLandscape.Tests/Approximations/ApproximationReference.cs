using LossLandscape.Approximations;
using LossLandscape.Data;
using LossLandscape.Engine;
using LossLandscape.Models;
using static TorchSharp.torch;

namespace LossLandscape.Tests.Approximations;

/// <summary>
/// Dense float64 constructions of the curvature approximations from their definitions, by a deliberately different and
/// simple path: J by autograd (one reverse pass per row of J), the loss's output-space Hessian Λᵢ written out from its
/// formula, the layers' inputs from a forward pass written here, the back-propagated δ from J's bias columns (an MLP) or
/// by autograd through a zero added to the layer's output (a sequential network), and the Kronecker products by torch.kron
/// with the layout mapped index by index.
/// </summary>
internal static class ApproximationReference
{
    /// <summary>Λᵢ = ∂²ℓᵢ/∂f² for every row (d × ℓ × ℓ), written out: 2I, 2/(dℓ)·I, (diag π − ππᵀ)·Σⱼyᵢⱼ/d.</summary>
    public static Tensor OutputHessians(LossFunction loss, Tensor outputs, Tensor targets)
    {
        long d = outputs.shape[0], l = outputs.shape[1];
        var result = zeros(d, l, l, dtype: float64);
        var f = outputs.detach();
        for (long i = 0; i < d; i++)
        {
            switch (loss.Kind)
            {
                case LossKind.Squared:
                    Assert.Equal(2.0, loss.Exponent);
                    result[i].copy_(eye(l, dtype: float64) * 2.0);
                    break;
                case LossKind.Mse:
                    result[i].copy_(eye(l, dtype: float64) * (2.0 / (d * l)));
                    break;
                default:
                    var pi = nn.functional.softmax(f[i], 0);
                    double w = targets[i].sum().item<double>() / d;
                    result[i].copy_((diag(pi) - pi.outer(pi)) * w);
                    break;
            }
        }
        return result;
    }

    /// <summary>The problem's J by autograd, d × ℓ × n.</summary>
    public static Tensor Jacobian(ResidualMap map) =>
        map.Jacobian(JacobianMethod.Autograd).view(map.Rows, map.Outputs, map.ParameterCount);

    /// <summary>G = Σᵢ JᵢᵀΛᵢJᵢ.</summary>
    public static Tensor GaussNewton(Tensor jacobian, Tensor hessians)
    {
        long n = jacobian.shape[2];
        var g = zeros(n, n, dtype: float64);
        for (long i = 0; i < jacobian.shape[0]; i++)
        {
            g.add_(jacobian[i].t().mm(hessians[i]).mm(jacobian[i]));
        }
        return g;
    }

    /// <summary>The case's outputs and targets at its point.</summary>
    public static (Tensor Outputs, Tensor Targets) OutputsAndTargets(NetworkModel model, Dataset data)
    {
        var (x, y) = data.Read(0, data.Count);
        using var noGrad = no_grad();
        return (model.Forward(x.reshape([data.Count, .. model.InputShape])).detach(), y);
    }

    /// <summary>The inputs āᵢₜ with a 1 appended ((d·T) × (f + 1)) and the δ (d × T × ℓ × out) of each Kronecker block, from this file's own passes.</summary>
    public static IReadOnlyList<(Tensor Patches, Tensor Deltas)?> LayerInputsAndDeltas(NetworkModel model, Dataset data, Tensor jacobian, IReadOnlyList<ParameterBlock> blocks)
    {
        var (x, _) = data.Read(0, data.Count);
        var p = model.Parameters.detach();
        return model.Network switch
        {
            Mlp mlp => MlpFactors(mlp, p, x, jacobian, blocks),
            SequentialNetwork seq => SequentialFactors(seq, p, x.reshape([data.Count, .. seq.InputShape]), blocks),
            _ => throw new NotSupportedException(),
        };
    }

    private static IReadOnlyList<(Tensor, Tensor)?> MlpFactors(Mlp mlp, Tensor p, Tensor x, Tensor jacobian, IReadOnlyList<ParameterBlock> blocks)
    {
        var a = mlp.Scaling is { } s ? (x - tensor(s.Shift)) / tensor(s.Scale) : x;
        var result = new List<(Tensor, Tensor)?>();
        foreach (var (layer, block) in mlp.Layers.Zip(blocks))
        {
            long d = a.shape[0];
            var patches = cat([a, ones(d, 1, dtype: float64)], 1);
            // ∂f_j(xᵢ)/∂b_o = δ[i, j, o]: the bias columns of J.
            var deltas = jacobian.narrow(2, layer.BiasOffset, layer.Out).unsqueeze(1);
            result.Add((patches, deltas));
            var z = a.mm(Mlp.Weight(p, layer).t()) + Mlp.Bias(p, layer);
            a = layer.Activation is { } sigma ? sigma.Apply(z) : z;
            Assert.Equal(layer.WeightOffset, block.Offset);
        }
        return result;
    }

    private static IReadOnlyList<(Tensor, Tensor)?> SequentialFactors(SequentialNetwork seq, Tensor p, Tensor x, IReadOnlyList<ParameterBlock> blocks)
    {
        var result = new List<(Tensor, Tensor)?>();
        foreach (var block in blocks)
        {
            var slice = seq.Layers[block.Index];
            if (!block.IsKronecker)
            {
                result.Add(null);
                continue;
            }
            long d = x.shape[0];
            var bump = zeros([d, .. slice.OutputShape], dtype: float64).requires_grad_(true);
            var (outputs, input) = Forward(seq, p, x, block.Index, bump);
            int l = (int)outputs.shape[1];
            // δ at the layer's output, one reverse pass per output j: rows are independent, so ∂Σᵢf_j(xᵢ)/∂bump = δ[:, j].
            var perOutput = new Tensor[l];
            for (int j = 0; j < l; j++)
            {
                perOutput[j] = autograd.grad([outputs.select(1, j).sum()], [bump], retain_graph: true)[0].reshape(d, block.Out, block.Positions);
            }
            var deltas = stack(perOutput, 1).permute(0, 3, 1, 2); // d × T × ℓ × out
            Tensor patches;
            if (slice.Layer is Conv2dLayer conv)
            {
                var unfolded = nn.functional.unfold(input.detach(), (conv.Kernel, conv.Kernel), padding: (conv.Padding, conv.Padding), stride: (conv.Stride, conv.Stride));
                patches = unfolded.transpose(1, 2).reshape(-1, block.FanIn);
            }
            else
            {
                patches = input.detach();
            }
            patches = cat([patches, ones(patches.shape[0], 1, dtype: float64)], 1);
            result.Add((patches, deltas.detach()));
        }
        return result;
    }

    /// <summary>The network's forward pass written layer by layer, with <paramref name="bump"/> added to layer <paramref name="tap"/>'s output; (f, the layer's input).</summary>
    private static (Tensor Outputs, Tensor Input) Forward(SequentialNetwork seq, Tensor p, Tensor x, int tap, Tensor bump)
    {
        var a = x;
        Tensor? tapped = null;
        foreach (var s in seq.Layers)
        {
            if (s.Index == tap)
            {
                tapped = a;
            }
            a = s.Layer switch
            {
                Conv2dLayer c => nn.functional.conv2d(a, SequentialNetwork.Weight(p, s), SequentialNetwork.Bias(p, s), strides: [c.Stride, c.Stride], padding: [c.Padding, c.Padding]),
                MaxPool2dLayer m => nn.functional.max_pool2d(a, [m.Kernel, m.Kernel], [m.Stride, m.Stride]),
                AvgPool2dLayer v => nn.functional.avg_pool2d(a, [v.Kernel, v.Kernel], [v.Stride, v.Stride]),
                BatchNormLayer bn => BatchNorm(a, bn, SequentialNetwork.Weight(p, s), SequentialNetwork.Bias(p, s)),
                FlattenLayer => a.reshape(a.shape[0], -1),
                LinearLayer => nn.functional.linear(a, SequentialNetwork.Weight(p, s), SequentialNetwork.Bias(p, s)),
                ActivationLayer f => f.Activation.Apply(a),
                _ => throw new NotSupportedException(),
            };
            if (s.Index == tap)
            {
                a = a + bump;
            }
        }
        return (a, tapped!);
    }

    private static Tensor BatchNorm(Tensor a, BatchNormLayer bn, Tensor gamma, Tensor beta)
    {
        long[] shape = a.dim() == 4 ? [1, gamma.shape[0], 1, 1] : [1, gamma.shape[0]];
        var mean = tensor(bn.RunningMean!.ToArray()).view(shape);
        var std = (tensor(bn.RunningVar!.ToArray()) + bn.Eps).sqrt().view(shape);
        return (a - mean) / std * gamma.view(shape) + beta.view(shape);
    }

    /// <summary>
    /// For a Kronecker block: the indices into the block (0 … count − 1) of the augmented layout's entries (o, j), row-major over
    /// out × (f + 1): W[o, j] sits at o·f + j, b[o] at out·f + o.
    /// </summary>
    public static long[] AugmentedOrder(ParameterBlock block)
    {
        var order = new long[block.Out * (block.FanIn + 1)];
        for (int o = 0; o < block.Out; o++)
        {
            for (int j = 0; j <= block.FanIn; j++)
            {
                order[(o * (block.FanIn + 1)) + j] = j < block.FanIn ? (o * block.FanIn) + j : block.WeightCount + o;
            }
        }
        return order;
    }

    /// <summary>A matrix over the augmented layout (m × m, m = out·(f + 1)) in the block's own layout (count × count).</summary>
    public static Tensor FromAugmented(Tensor augmented, ParameterBlock block)
    {
        var order = tensor(AugmentedOrder(block));
        var result = zeros(block.Count, block.Count, dtype: float64);
        var permutation = zeros(block.Count, order.shape[0], dtype: float64);
        permutation.index_put_(tensor(1.0), [order, arange(order.shape[0])]);
        result.copy_(permutation.mm(augmented).mm(permutation.t()));
        return result;
    }

    /// <summary>The block's rows and columns of a dense n × n matrix, in the augmented layout.</summary>
    public static Tensor ToAugmented(Tensor matrix, ParameterBlock block)
    {
        var order = tensor(AugmentedOrder(block)) + block.Offset;
        return matrix.index_select(0, order).index_select(1, order);
    }

    /// <summary>KFAC's factors of a Kronecker block from the definitions: A = (1/d)Σᵢₜ āāᵀ, B = (1/T)Σᵢₜ δᵢₜᵀΛᵢδᵢₜ.</summary>
    public static (Tensor A, Tensor B) KfacFactors(Tensor patches, Tensor deltas, Tensor hessians, ParameterBlock block)
    {
        long d = deltas.shape[0];
        var a = patches.t().mm(patches) / d;
        var b = zeros(block.Out, block.Out, dtype: float64);
        for (long i = 0; i < d; i++)
        {
            for (long t = 0; t < block.Positions; t++)
            {
                var delta = deltas[i, t]; // ℓ × out
                b.add_(delta.t().mm(hessians[i]).mm(delta));
            }
        }
        return (a, b / block.Positions);
    }

    /// <summary>The block diagonal of <paramref name="matrix"/> on <paramref name="blocks"/>: every entry outside the blocks zeroed.</summary>
    public static Tensor BlockDiagonal(Tensor matrix, IReadOnlyList<ParameterBlock> blocks)
    {
        var mask = zeros_like(matrix);
        foreach (var b in blocks)
        {
            foreach (int i in b.Indices)
            {
                foreach (int j in b.Indices)
                {
                    mask[i, j] = tensor(1.0);
                }
            }
        }
        return matrix * mask;
    }

    /// <summary>max|A − B| / max|A|.</summary>
    public static double Relative(Tensor expected, Tensor actual) => Curvature.CurvatureReference.Relative(expected, actual);

    /// <summary>Ensures the runtime is up (for the static helpers used before any map).</summary>
    public static void Init() => TorchRuntime.EnsureInitialized();
}
