using LossLandscape.Engine;

namespace LossLandscape.Data;

/// <summary>Seeded synthetic datasets, identical for a seed on every machine (System.Random, not libtorch).</summary>
public static class SyntheticData
{
    /// <summary>Copies of the D × (P + L) numbers that exist at once while synthetic data is made and used: the generated arrays, the dataset's rows and the residual map's tensor.</summary>
    public const int DataCopies = 3;

    /// <summary>
    /// d points xᵢ ~ N(0, I_p), distinct with probability 1, and ℓ targets yᵢ ~ N(0, I_ℓ) independent
    /// of the inputs: the hardest case for interpolation, since no structure helps; refused above the budget of <paramref name="limits"/>.
    /// </summary>
    public static Dataset Gaussian(int count, int inputDim, int outputDim = 1, int seed = 0, RunLimits? limits = null)
    {
        if (count < 1 || inputDim < 1 || outputDim < 1)
        {
            throw new LandscapeInputException(FormattableString.Invariant($"synthetic data sizes must be positive, got D = {count}, P = {inputDim}, L = {outputDim}"), nameof(count));
        }
        // Before the arrays exist: each fits one .NET array (sized in 64 bits), and D × (P + L) doubles, held DataCopies times (the generated arrays, the dataset's rows and the tensor of the residual map).
        _ = Dataset.FlatLength(count, inputDim, "synthetic data: the inputs");
        _ = Dataset.FlatLength(count, outputDim, "synthetic data: the targets");
        (limits ?? RunLimits.Default).Require(FormattableString.Invariant($"synthetic data of D = {count} rows × (P + L) = {(long)inputDim + outputDim} columns (×{DataCopies} copies)"),
            SaturatingTimes(DataCopies, MemoryBudget.DenseMatrixBytes(count, (long)inputDim + outputDim)), "use fewer rows D or columns P of the synthetic data", BudgetRemedy.Rows);
        var rng = new Random(seed);
        var x = new double[count, inputDim];
        var y = new double[count, outputDim];
        for (int i = 0; i < count; i++)
        {
            for (int j = 0; j < inputDim; j++)
            {
                x[i, j] = SeededNormal.Next(rng);
            }
            for (int j = 0; j < outputDim; j++)
            {
                y[i, j] = SeededNormal.Next(rng);
            }
        }
        return new Dataset(x, y, source: $"synthetic:{count},{inputDim},{outputDim},{seed}");
    }

    /// <summary>
    /// d points xᵢ ~ N(0, I_p) with targets from a random teacher y = sin(Wx)·v (ℓ outputs): smooth
    /// targets that a network can fit and generalize on.
    /// </summary>
    public static Dataset Teacher(int count, int inputDim, int outputDim = 1, int seed = 0)
    {
        var basis = Gaussian(count, inputDim, 1, seed);
        var rng = new Random(seed + 1);
        int width = 8;
        var w = SeededNormal.Vector(rng, width * inputDim);
        var v = SeededNormal.Vector(rng, width * outputDim);
        var y = new double[count, outputDim];
        for (int i = 0; i < count; i++)
        {
            for (int k = 0; k < width; k++)
            {
                double z = 0;
                for (int j = 0; j < inputDim; j++)
                {
                    z += w[k * inputDim + j] * basis.Input(i, j) / Math.Sqrt(inputDim);
                }
                for (int o = 0; o < outputDim; o++)
                {
                    y[i, o] += Math.Sin(z) * v[k * outputDim + o] / Math.Sqrt(width);
                }
            }
        }
        return basis.WithTargets(y);
    }

    private static long SaturatingTimes(long factor, long bytes) => bytes > long.MaxValue / factor ? long.MaxValue : factor * bytes;
}
