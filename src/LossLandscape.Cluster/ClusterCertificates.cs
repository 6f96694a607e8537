using System.Globalization;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using LossLandscape.Engine;
using Orleans.Connections.Security;

namespace LossLandscape.Cluster;

/// <summary>
/// The certificates of a cluster with <see cref="ClusterConfig.Tls"/>: the cluster's own authority (CA), a certificate for
/// each worker and one for the driver, written beside the cluster file as PEM files (<c>NAME.ca.crt</c>,
/// <c>NAME.worker-I.crt</c> and <c>.key</c>, <c>NAME.driver.crt</c> and <c>.key</c>, for a cluster file <c>NAME.json</c>);
/// the private keys with mode 0600. The authority's own key is never written: a process can join or call only with a
/// certificate made by <c>cluster init --tls</c> itself, and a new worker needs a new init.
/// </summary>
/// <remarks>
/// Each side of every connection (silo to silo, driver to gateway) presents its certificate and accepts the other's only if
/// its chain ends at the cluster's authority (<see cref="Accepts"/>, X.509 path validation with the authority as the one
/// trusted root, RFC 5280 §6). Names and addresses are not checked: a worker may be restarted on another address with its
/// certificate, and the authority, not DNS, says who belongs to the cluster.
/// </remarks>
public static class ClusterCertificates
{
    /// <summary>How long the certificates are valid: 10 years, a cluster's lifetime; a new <c>cluster init --tls</c> renews them.</summary>
    public static readonly TimeSpan Validity = TimeSpan.FromDays(3650);

    /// <summary>The authority's certificate beside <paramref name="clusterFile"/>.</summary>
    public static string AuthorityPath(string clusterFile) => Beside(clusterFile, "ca.crt");

    /// <summary>Worker <paramref name="index"/>'s certificate and key files beside <paramref name="clusterFile"/>.</summary>
    public static (string Certificate, string Key) WorkerPaths(string clusterFile, int index) =>
        (Beside(clusterFile, string.Create(CultureInfo.InvariantCulture, $"worker-{index}.crt")), Beside(clusterFile, string.Create(CultureInfo.InvariantCulture, $"worker-{index}.key")));

    /// <summary>The driver's certificate and key files beside <paramref name="clusterFile"/>.</summary>
    public static (string Certificate, string Key) DriverPaths(string clusterFile) => (Beside(clusterFile, "driver.crt"), Beside(clusterFile, "driver.key"));

    private static string Beside(string clusterFile, string suffix)
    {
        ArgumentNullException.ThrowIfNull(clusterFile);
        string full = Path.GetFullPath(clusterFile);
        return Path.Combine(Path.GetDirectoryName(full) ?? ".", $"{Path.GetFileNameWithoutExtension(full)}.{suffix}");
    }

    /// <summary>
    /// Makes a new authority and a certificate for each of <paramref name="workers"/> workers and for the driver, and writes
    /// them beside <paramref name="clusterFile"/> (each file written whole or not at all; the keys readable by their owner
    /// only). Returns the files written.
    /// </summary>
    /// <param name="clusterFile">The cluster file the certificates belong to.</param>
    /// <param name="workers">How many workers.</param>
    /// <param name="clusterId">The cluster's id, in the certificates' names.</param>
    public static IReadOnlyList<string> Write(string clusterFile, int workers, string clusterId)
    {
        ArgumentNullException.ThrowIfNull(clusterFile);
        ArgumentOutOfRangeException.ThrowIfLessThan(workers, 1);
        var written = new List<string>();
        var now = DateTimeOffset.UtcNow.AddMinutes(-5); // room for clocks a little behind this one
        using var authorityKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={clusterId} cluster authority", authorityKey, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        using var authority = request.CreateSelfSigned(now, now + Validity);
        string authorityPath = AuthorityPath(clusterFile);
        AtomicFile.WriteAllText(authorityPath, authority.ExportCertificatePem() + "\n");
        written.Add(authorityPath);
        void Issue(string name, (string Certificate, string Key) paths)
        {
            using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            var leaf = new CertificateRequest($"CN={clusterId} {name}", key, HashAlgorithmName.SHA256);
            leaf.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
            leaf.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
            // Every worker is a TLS server (its silo and gateway ports) and a client (to the other silos); the driver a client.
            leaf.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2")], false));
            leaf.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(authority, true, false));
            byte[] serial = RandomNumberGenerator.GetBytes(16);
            serial[0] &= 0x7F; // a positive serial number (RFC 5280 §4.1.2.2)
            using var certificate = leaf.Create(authority.SubjectName, X509SignatureGenerator.CreateForECDsa(authorityKey), now, now + Validity, serial);
            AtomicFile.WritePrivateText(paths.Key, key.ExportPkcs8PrivateKeyPem() + "\n");
            AtomicFile.WriteAllText(paths.Certificate, certificate.ExportCertificatePem() + "\n");
            written.Add(paths.Certificate);
            written.Add(paths.Key);
        }
        for (int i = 0; i < workers; i++)
        {
            Issue(string.Create(CultureInfo.InvariantCulture, $"worker {i}"), WorkerPaths(clusterFile, i));
        }
        Issue("driver", DriverPaths(clusterFile));
        return written;
    }

    /// <summary>Worker <paramref name="index"/>'s identity: its certificate with its key, and the cluster's authority.</summary>
    /// <exception cref="LandscapeInputException">A file is missing or is not a PEM certificate or key, in one line naming it.</exception>
    public static ClusterIdentity ForWorker(string clusterFile, int index) => Load(clusterFile, WorkerPaths(clusterFile, index));

    /// <summary>The driver's identity: its certificate with its key, and the cluster's authority.</summary>
    /// <exception cref="LandscapeInputException">A file is missing or is not a PEM certificate or key, in one line naming it.</exception>
    public static ClusterIdentity ForDriver(string clusterFile) => Load(clusterFile, DriverPaths(clusterFile));

    private static ClusterIdentity Load(string clusterFile, (string Certificate, string Key) paths)
    {
        string authorityPath = AuthorityPath(clusterFile);
        foreach (var path in new[] { authorityPath, paths.Certificate, paths.Key })
        {
            if (!File.Exists(path))
            {
                throw new LandscapeInputException($"--cluster: the cluster uses TLS and {path} is missing (landscape cluster init --tls writes it beside the cluster file)");
            }
        }
        try
        {
            var authority = X509Certificate2.CreateFromPem(File.ReadAllText(authorityPath));
            using var pem = X509Certificate2.CreateFromPemFile(paths.Certificate, paths.Key);
            // A certificate whose key came from a PEM file is ephemeral; TLS servers on Linux take it as it is, but a PKCS#12
            // round trip gives a key every platform's TLS stack accepts.
            var own = X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
            if (!Accepts(authority, own))
            {
                throw new LandscapeInputException($"--cluster: {paths.Certificate} was not issued by the cluster's authority {authorityPath}: the cluster would refuse it");
            }
            return new ClusterIdentity(own, authority);
        }
        catch (CryptographicException e)
        {
            throw new LandscapeInputException($"--cluster: {paths.Certificate} with {paths.Key}: not a PEM certificate and its private key ({e.Message.ReplaceLineEndings(" ")})");
        }
    }

    /// <summary>
    /// Whether <paramref name="certificate"/> was issued by <paramref name="authority"/>: X.509 path validation with the
    /// authority as the only trusted root, no revocation lists (the cluster has none), at the current time.
    /// </summary>
    public static bool Accepts(X509Certificate2 authority, X509Certificate2 certificate)
    {
        ArgumentNullException.ThrowIfNull(authority);
        ArgumentNullException.ThrowIfNull(certificate);
        if (certificate.RawDataMemory.Span.SequenceEqual(authority.RawDataMemory.Span))
        {
            return false; // the authority itself is no member
        }
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(authority);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.VerificationFlags = X509VerificationFlags.NoFlag;
        return chain.Build(certificate);
    }

    /// <summary>
    /// Sets <paramref name="options"/> for mutual TLS as <paramref name="identity"/>: this side presents its certificate,
    /// requires one from the other side, and accepts it only when the cluster's authority issued it (<see cref="Accepts"/>).
    /// </summary>
    public static void Configure(TlsOptions options, ClusterIdentity identity)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(identity);
        options.LocalCertificate = identity.Certificate;
        options.RemoteCertificateMode = RemoteCertificateMode.RequireCertificate;
        options.ClientCertificateMode = RemoteCertificateMode.RequireCertificate;
        // Names are not checked (the remarks): the policy's name mismatch and unknown root are decided by the chain alone.
        options.RemoteCertificateValidation = (certificate, _, _) => Accepts(identity.Authority, certificate);
    }
}

/// <summary>Who a process is in a TLS cluster: its certificate (with its private key) and the cluster's authority.</summary>
/// <param name="Certificate">This process's certificate, with its private key.</param>
/// <param name="Authority">The cluster's authority, the only root a peer's certificate may chain to.</param>
public sealed record ClusterIdentity(X509Certificate2 Certificate, X509Certificate2 Authority);
