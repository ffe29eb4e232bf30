namespace Interpose.Certificates;

/// <summary>Where <see cref="CertificateAuthority.LoadOrCreate"/> keeps the CA and how it creates one.</summary>
public sealed class CertificateAuthorityOptions
{
    /// <summary>The directory holding the CA files; <see langword="null"/> means <see cref="InterposeHome.Resolve"/>.</summary>
    public string? Directory { get; init; }

    /// <summary>The key algorithm of a newly created CA; an existing CA is loaded whatever its algorithm.</summary>
    public CertificateKeyAlgorithm KeyAlgorithm { get; init; } = CertificateKeyAlgorithm.EcdsaP256;

    /// <summary>The clock that dates a newly created CA.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>
    /// Whether a missing CA is created (the default). When <see langword="false"/>, a missing CA is a
    /// <see cref="CertificateException"/> telling the user to run <c>interpose ca init</c>.
    /// </summary>
    public bool CreateIfMissing { get; init; } = true;
}
