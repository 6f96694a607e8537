using System.Globalization;
using LossLandscape.Models.Activations;

namespace LossLandscape.Models;

/// <summary>
/// The one-line architecture of a <see cref="SequentialNetwork"/>, comma-separated layers, e.g.
/// <c>conv:16:3,relu,pool:2,conv:32:3:1:1,relu,pool:2,flatten,linear:64,relu,linear</c>.
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item><c>conv:OUT:K[:STRIDE[:PAD]]</c>: <see cref="Conv2dLayer"/>, OUT channels, a K × K kernel, stride 1 and padding 0 by default (PyTorch's).</item>
/// <item><c>pool:K[:STRIDE]</c> (or <c>maxpool</c>) and <c>avgpool:K[:STRIDE]</c>: <see cref="MaxPool2dLayer"/> and <see cref="AvgPool2dLayer"/>, stride K by default (PyTorch's).</item>
/// <item><c>bn</c>: <see cref="BatchNormLayer"/> with a fresh layer's statistics (μ = 0, σ² = 1, ε = 1e−5).</item>
/// <item><c>flatten</c>, <c>linear:OUT</c>, and an activation's name (<see cref="ActivationRegistry.Names"/>).</item>
/// <item>A last <c>linear</c> without OUT has the data's ℓ outputs.</item>
/// </list>
/// </remarks>
public static class ArchitectureSpec
{
    /// <summary>The spec's layers; a last <c>linear</c> without OUT gets <paramref name="outputs"/>.</summary>
    /// <exception cref="LandscapeInputException">An item that is not a layer, naming its position and the syntax expected.</exception>
    public static IReadOnlyList<SequentialLayer> Parse(string spec, int outputs)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (string.IsNullOrWhiteSpace(spec))
        {
            throw new LandscapeInputException("the architecture is empty; expected layers such as conv:16:3,relu,pool:2,flatten,linear");
        }
        var items = spec.Split(',', StringSplitOptions.TrimEntries);
        var layers = new SequentialLayer[items.Length];
        for (int k = 0; k < items.Length; k++)
        {
            layers[k] = Item(items[k], k, items.Length, outputs);
        }
        return layers;
    }

    /// <summary>The network of <paramref name="spec"/> on rows of shape <paramref name="inputShape"/> with ℓ = <paramref name="outputs"/> (for a last <c>linear</c>).</summary>
    /// <exception cref="LandscapeInputException">The spec does not parse, or its layers do not fit the shapes (<see cref="SequentialNetwork(IReadOnlyList{long}, IReadOnlyList{SequentialLayer})"/>).</exception>
    public static SequentialNetwork Build(string spec, IReadOnlyList<long> inputShape, int outputs) => new(inputShape, Parse(spec, outputs));

    private static SequentialLayer Item(string item, int k, int count, int outputs)
    {
        string where = $"layer {k + 1} of {count} '{item}'";
        if (item.Length == 0)
        {
            throw new LandscapeInputException($"layer {k + 1} of {count} is empty (two commas in a row?)");
        }
        var parts = item.Split(':');
        string name = parts[0].ToLowerInvariant();
        int[] Numbers(int required, int optional, string syntax)
        {
            if (parts.Length - 1 < required || parts.Length - 1 > required + optional)
            {
                throw new LandscapeInputException($"{where}: expected {syntax}");
            }
            var values = new int[parts.Length - 1];
            for (int i = 1; i < parts.Length; i++)
            {
                if (!int.TryParse(parts[i], NumberStyles.None, CultureInfo.InvariantCulture, out values[i - 1]))
                {
                    throw new LandscapeInputException($"{where}: '{parts[i]}' is not a whole number; expected {syntax}");
                }
            }
            return values;
        }
        switch (name)
        {
            case "conv":
            {
                var v = Numbers(2, 2, "conv:OUT:KERNEL[:STRIDE[:PADDING]]");
                return new Conv2dLayer(v[0], v[1], v.Length > 2 ? v[2] : 1, v.Length > 3 ? v[3] : 0);
            }
            case "pool" or "maxpool":
            {
                var v = Numbers(1, 1, $"{name}:KERNEL[:STRIDE]");
                return new MaxPool2dLayer(v[0], v.Length > 1 ? v[1] : v[0]);
            }
            case "avgpool":
            {
                var v = Numbers(1, 1, "avgpool:KERNEL[:STRIDE]");
                return new AvgPool2dLayer(v[0], v.Length > 1 ? v[1] : v[0]);
            }
            case "bn":
                Numbers(0, 0, "bn");
                return new BatchNormLayer();
            case "flatten":
                Numbers(0, 0, "flatten");
                return new FlattenLayer();
            case "linear":
            {
                var v = Numbers(0, 1, "linear:OUT (or linear, last, for the outputs of the data)");
                if (v.Length == 0 && k != count - 1)
                {
                    throw new LandscapeInputException($"{where}: only the last layer may leave OUT out (it gets the {outputs} outputs of the data); expected linear:OUT");
                }
                return new LinearLayer(v.Length == 0 ? outputs : v[0]);
            }
            default:
                if (ActivationRegistry.TryGet(name, out var sigma) && parts.Length == 1)
                {
                    return new ActivationLayer(sigma!);
                }
                throw new LandscapeInputException(
                    $"{where}: unknown layer; expected conv:OUT:K[:STRIDE[:PAD]], pool:K[:STRIDE], avgpool:K[:STRIDE], bn, flatten, linear[:OUT] or an activation ({string.Join(", ", ActivationRegistry.Names)})");
        }
    }
}
