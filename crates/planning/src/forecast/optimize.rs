//! Nelder–Mead minimisation (the downhill simplex of Nelder and Mead, 1965, with the standard
//! coefficients: reflection 1, expansion 2, contraction ½, shrink ½), for fitting smoothing
//! parameters. Constraints are the objective's business (it answers `f64::INFINITY` outside).

/// The minimum of `f` found from `start`, with initial steps `steps`, within `max_evals`
/// evaluations or once the simplex's values agree to `tolerance`.
pub fn nelder_mead(
    f: &mut dyn FnMut(&[f64]) -> f64,
    start: &[f64],
    steps: &[f64],
    max_evals: usize,
    tolerance: f64,
) -> (Vec<f64>, f64) {
    let n = start.len();
    let mut simplex: Vec<(Vec<f64>, f64)> = Vec::with_capacity(n + 1);
    let first = f(start);
    simplex.push((start.to_vec(), first));
    for i in 0..n {
        let mut x = start.to_vec();
        x[i] += steps[i];
        let v = f(&x);
        simplex.push((x, v));
    }
    let mut evals = n + 1;
    while evals < max_evals {
        simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
        let (best, worst) = (simplex[0].1, simplex[n].1);
        if (worst - best).abs() <= tolerance * (best.abs() + tolerance) {
            break;
        }
        let centroid: Vec<f64> =
            (0..n).map(|j| simplex[..n].iter().map(|(x, _)| x[j]).sum::<f64>() / n as f64).collect();
        let along = |t: f64| -> Vec<f64> {
            (0..n).map(|j| centroid[j] + t * (simplex[n].0[j] - centroid[j])).collect()
        };
        let reflected = along(-1.0);
        let fr = f(&reflected);
        evals += 1;
        if fr < simplex[0].1 {
            let expanded = along(-2.0);
            let fe = f(&expanded);
            evals += 1;
            simplex[n] = if fe < fr { (expanded, fe) } else { (reflected, fr) };
        } else if fr < simplex[n - 1].1 {
            simplex[n] = (reflected, fr);
        } else {
            let contracted = if fr < simplex[n].1 { along(-0.5) } else { along(0.5) };
            let fc = f(&contracted);
            evals += 1;
            if fc < fr.min(simplex[n].1) {
                simplex[n] = (contracted, fc);
            } else {
                let best = simplex[0].0.clone();
                for point in simplex.iter_mut().skip(1) {
                    for (x, b) in point.0.iter_mut().zip(&best) {
                        *x = b + 0.5 * (*x - b);
                    }
                    point.1 = f(&point.0);
                    evals += 1;
                }
            }
        }
    }
    simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
    let (x, v) = simplex.swap_remove(0);
    (x, v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_finds_the_minimum_of_rosenbrock_and_respects_a_wall() {
        let mut rosenbrock = |x: &[f64]| (1.0 - x[0]).powi(2) + 100.0 * (x[1] - x[0] * x[0]).powi(2);
        let (x, v) = nelder_mead(&mut rosenbrock, &[-1.2, 1.0], &[0.1, 0.1], 5_000, 1e-14);
        assert!((x[0] - 1.0).abs() < 1e-3 && (x[1] - 1.0).abs() < 1e-3 && v < 1e-6, "{x:?} {v}");
        let mut walled = |x: &[f64]| if x[0] < 0.5 { f64::INFINITY } else { (x[0] - 0.2).powi(2) };
        let (x, _) = nelder_mead(&mut walled, &[0.9], &[0.1], 500, 1e-12);
        assert!((x[0] - 0.5).abs() < 1e-3, "{x:?}");
    }
}
