global using LossLandscape.Problem;
