using static TorchSharp.torch;

namespace LossLandscape.Data;

/// <summary>
/// The affine input map x ↦ (x − shift)/scale stored in a model, so that the network is always a
/// function of the raw inputs (the <c>input</c> object of a model file).
/// </summary>
/// <param name="Shift">Subtracted per input column.</param>
/// <param name="Scale">Divides per input column; every entry nonzero and finite.</param>
public sealed record InputScaling(double[] Shift, double[] Scale)
{
    /// <summary>The number of input columns.</summary>
    public int Dimension => Shift.Length;

    /// <summary>
    /// Standardization: shift = column mean, scale = column standard deviation (population, 1/d);
    /// a constant column gets scale 1.
    /// </summary>
    public static InputScaling Standardize(Dataset data)
    {
        ArgumentNullException.ThrowIfNull(data);
        var shift = new double[data.InputDim];
        var scale = new double[data.InputDim];
        for (int j = 0; j < data.InputDim; j++)
        {
            double mean = 0;
            for (int i = 0; i < data.Count; i++)
            {
                mean += data.Input(i, j);
            }
            mean /= data.Count;
            double ss = 0;
            for (int i = 0; i < data.Count; i++)
            {
                double c = data.Input(i, j) - mean;
                ss += c * c;
            }
            double sd = Math.Sqrt(ss / data.Count);
            shift[j] = mean;
            scale[j] = sd > 0 && double.IsFinite(sd) ? sd : 1.0;
        }
        return new InputScaling(shift, scale);
    }

    /// <summary>Checks the shape and values; throws <see cref="ArgumentException"/> with the reason.</summary>
    public void Validate(int inputDim)
    {
        if (Shift.Length != inputDim || Scale.Length != inputDim)
        {
            throw new LandscapeInputException($"input scaling has {Shift.Length} shifts and {Scale.Length} scales, the network takes {inputDim} inputs");
        }
        if (Shift.Any(v => !double.IsFinite(v)) || Scale.Any(v => !double.IsFinite(v) || v == 0))
        {
            throw new LandscapeInputException("input scaling needs finite shifts and finite nonzero scales");
        }
    }

    /// <summary>(X − shift)/scale for a d × p tensor.</summary>
    public Tensor Apply(Tensor inputs)
    {
        using var scope = NewDisposeScope();
        var s = tensor(Shift, dtype: inputs.dtype);
        var c = tensor(Scale, dtype: inputs.dtype);
        return ((inputs - s) / c).MoveToOuterDisposeScope();
    }

    /// <summary>(x − shift)/scale for one row.</summary>
    public double[] Apply(double[] row) => row.Select((v, j) => (v - Shift[j]) / Scale[j]).ToArray();

    /// <summary>The dataset with its inputs mapped.</summary>
    public Dataset Apply(Dataset data)
    {
        var x = new double[data.Count, data.InputDim];
        var y = new double[data.Count, data.OutputDim];
        for (int i = 0; i < data.Count; i++)
        {
            for (int j = 0; j < data.InputDim; j++)
            {
                x[i, j] = (data.Input(i, j) - Shift[j]) / Scale[j];
            }
            for (int j = 0; j < data.OutputDim; j++)
            {
                y[i, j] = data.Target(i, j);
            }
        }
        return new Dataset(x, y, data.InputNames, data.TargetNames, data.Source);
    }
}
