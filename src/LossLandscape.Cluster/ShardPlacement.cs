using System.Globalization;
using Orleans.Placement;
using Orleans.Runtime.Placement;

namespace LossLandscape.Cluster;

/// <summary>
/// Places shard s on the (s mod W)-th of the W live silos, ordered by address: the shards spread evenly over the workers
/// (Orleans' default, resource-optimised placement may put several on one silo, which then does their work in series).
/// When a silo dies its shards are placed over the silos that remain.
/// </summary>
[GenerateSerializer, Immutable, SuppressReferenceTracking]
[Alias("LossLandscape.Cluster.ShardPlacement")]
public sealed class ShardPlacement : PlacementStrategy
{
    /// <summary>The one instance the attribute uses.</summary>
    internal static readonly ShardPlacement Instance = new();
}

/// <summary>Marks a grain class for <see cref="ShardPlacement"/>.</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false)]
public sealed class ShardPlacementAttribute : PlacementAttribute
{
    /// <summary>The attribute.</summary>
    public ShardPlacementAttribute() : base(ShardPlacement.Instance)
    {
    }
}

/// <summary>The director of <see cref="ShardPlacement"/>: the shard index is the part of the grain key after the last '/'.</summary>
internal sealed class ShardPlacementDirector : IPlacementDirector
{
    /// <inheritdoc />
    public Task<SiloAddress> OnAddActivation(PlacementStrategy strategy, PlacementTarget target, IPlacementContext context)
    {
        var silos = context.GetCompatibleSilos(target)
            .OrderBy(s => s.Endpoint.Address.ToString(), StringComparer.Ordinal).ThenBy(s => s.Endpoint.Port).ThenBy(s => s.Generation).ToArray();
        string key = target.GrainIdentity.Key.ToString() ?? "";
        int slash = key.LastIndexOf('/');
        int shard = slash >= 0 && int.TryParse(key.AsSpan(slash + 1), NumberStyles.Integer, CultureInfo.InvariantCulture, out int s) ? s : 0;
        return Task.FromResult(silos[(int)((uint)shard % (uint)silos.Length)]);
    }
}
