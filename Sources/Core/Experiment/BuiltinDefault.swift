// The built-in experiment. Keep identical to configs/quick.yaml (ExperimentTests checks byte for byte).

public extension ExperimentConfig {
    /// The text of `configs/quick.yaml`, embedded so `builtinDefault()` needs no file.
    static let builtinDefaultYAML = #"""
# quick.yaml: NTKScape's built-in default experiment (what `ntkscape run` does without a file).
# Source: NTKScape's small-scale version of Fort et al. 2020 ("Deep learning versus kernel learning",
# NeurIPS 2020) with their SimpleCNN (appendix D.1) at quarter width and its optimiser, Adam at
# learning rate 1e-3, on 10,000 Fashion-MNIST images for 8 epochs, sized for about 10 minutes
# on 2 cores with 2 ranks. The quarter-width network (8-8-16-16-32-32 channels, 18,370 parameters)
# trains at ~1,400 images/s per rank on one thread (full width: ~250) and reaches ~17% test error.
# Budget: parent 8 epochs x 10k = 80k images; children 2 x (8 + 7.75 + 7.5 + 7 + 6) epochs x 10k =
# 725k images; 11-point barriers on 2000 test + 1000 train images for 5 pairs; errors at 7 parent
# times; NTK Grams (probe 100 -> 1000 x 1000) at those times, 0.25 epoch later (velocity) and for
# every child; kernel machines on 2 draws of 300 examples (3000 x 3000 Gram; ridge chosen on
# held-out examples) at 3 times; from 3 times, 2 seeds
# of the linearised model (2 epochs) and of the low-learning-rate child (at most 2 epochs, plateau
# stop), both with Adam at learning rate 3e-4 - below the parent's 1e-3, the same for both so that
# the nonlinear advantage compares like with like (docs/linearized.md gives measured values);
# Hessian top-5 eigenvalues, trace and spectral density at 3 times (exact Hessian-vector products on
# 500 examples); 7 x 7 loss planes (300 test images, with the tangent planes) at one early and one
# late spawn time; softmax predictions on 1000 test images every epoch of every child, their
# distances over time and their joint t-SNE; statistics.json (basin-fate threshold 0.5 point, as
# this small network's barriers stay below 1 point).
# The learning rate drops 10x at epoch 6 so the children's final weights are not dominated by Adam's
# last noisy steps.
# This file is embedded in the program (ExperimentConfig.builtinDefaultYAML); a test keeps the two
# byte-for-byte identical, so edit both together.
name: quick
seed: 0
dataset:
  kind: fashion-mnist
  path: /usr/share/datasets/fashion-mnist
  train_subset: 10000
  test_subset: 2000
  augment: off
model: simplecnn_w8
recipe:
  optimizer: adam
  learning_rate: 0.001
  weight_decay: 0
  schedule: {milestones: [6], gamma: 0.1}
  batch_size: 128
  epochs: 8
  loss: cross_entropy
replicates: 1
spawn_times: [0, 0.25, 0.5, 1, 2]
children: 2
measurement_times: [0, 0.25, 0.5, 1, 2, 4, 8]
probe_size: 100
barrier:
  points: 11
  train_subset: 1000
ntk:
  velocity_dt: 0.25
kernel_machine:
  times: [0, 1, 8]
  train_examples: 300
  draws: 2
linearized:
  times: [0, 1, 4]
  epochs: 2
  optimizer: adam
  learning_rate: 0.0003
  child:
    epochs: 2
    learning_rate: 0.0003
    patience: 1
    tolerance: 0.01
    seeds: 2
hessian:
  times: [0, 2, 8]
  examples: 500
  iterations: 15
  trace_samples: 5
  density_steps: 15
plane:
  spawn_times: [0, 2]
  points: 7
  test_subset: 300
trajectories:
  enabled: true
  examples: 1000
  every: 1
statistics:
  barrier_threshold: 0.005

"""#
}
