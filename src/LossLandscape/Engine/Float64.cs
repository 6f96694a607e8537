namespace LossLandscape.Engine;

/// <summary>Constants of IEEE 754 binary64 arithmetic, in which every geometric decision of the library is made.</summary>
public static class Float64
{
    /// <summary>
    /// Machine epsilon ε = 2⁻⁵², the gap between 1 and the next double; rounding to nearest has relative error
    /// at most ε/2 (Higham, Accuracy and Stability of Numerical Algorithms, 2002, §2.1).
    /// </summary>
    public const double Epsilon = 2.220446049250313e-16;
}
