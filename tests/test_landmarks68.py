import numpy as np
import pytest

from synthgen.landmarks68 import (
    GROUPS, INTER_OCULAR, LANDMARKS68_SKELETON, NUM_POINTS, draw_landmarks, inter_ocular_distance,
)


def test_groups_partition_the_68_points():
    covered = sorted(i for group in GROUPS.values() for i in group)
    assert covered == list(range(NUM_POINTS))


def test_skeleton_indexes_points_and_closes_eyes_and_lips():
    assert all(0 <= i < NUM_POINTS for line in LANDMARKS68_SKELETON for i in line)
    closed = [line for line in LANDMARKS68_SKELETON if line[0] == line[-1]]
    assert {line[0] for line in closed} == {36, 42, 48, 60}


def test_inter_ocular_distance_of_eye_centres():
    points = np.zeros((68, 2), np.float32)
    points[list(INTER_OCULAR[0])] = (10.0, 20.0)
    points[list(INTER_OCULAR[1])] = (40.0, 24.0)
    assert inter_ocular_distance(points) == pytest.approx(np.hypot(30, 4))


def test_draw_a_line_lights_its_pixels_only():
    points = np.array([[5.0, 10.0], [25.0, 10.0]])
    image = draw_landmarks(points, 32, skeleton=[(0, 1)])
    assert image.dtype == np.uint8 and image.shape == (32, 32)
    assert (image[10, 5:26] > 200).all()
    assert image[13:, :].max() == 0 and image[:8, :].max() == 0
    assert image[10, 28:].max() == 0


def test_any_point_count_and_points_off_canvas():
    points = np.array([[3.0, 3.0], [-50.0, 8.0], [12.0, 90.0]])
    image = draw_landmarks(points, 16, skeleton=[(0, 1, 2)], dot_radius=1.0)
    assert image[3, 3] == 255
    assert image.sum() > 0


def test_lines_are_equally_dark_whatever_their_length():
    points = np.array([[2.0, 4.0], [60.0, 4.0], [2.0, 20.0], [6.0, 20.0]])
    image = draw_landmarks(points, 64, skeleton=[(0, 1), (2, 3)], dot_radius=0.0)
    assert image[4, 30] == pytest.approx(image[20, 4], abs=3)
